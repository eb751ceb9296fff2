"""services.secrets_box: sealed values open only with the same key and context."""

from __future__ import annotations

import pytest

from tidegate.services.secrets_box import SecretsKeyError, open_box

KEY = "a-key-of-sixteen-or-more"


def test_round_trip_and_fresh_nonce() -> None:
    box = open_box(KEY)
    one, two = box.seal("p@ss", context="registry 'a'"), box.seal("p@ss", context="registry 'a'")
    assert one != two  # a fresh nonce per seal
    assert "p@ss" not in one
    assert box.open(one, context="registry 'a'") == "p@ss"


@pytest.mark.parametrize(
    ("key", "context", "tamper", "message"),
    [
        ("another-key-of-16-chars", "registry 'a'", False, "cannot be decrypted"),
        (KEY, "registry 'b'", False, "cannot be decrypted"),
        (KEY, "registry 'a'", True, "cannot be decrypted"),
    ],
    ids=["wrong key", "other row", "tampered"],
)
def test_refuses_to_open(key: str, context: str, tamper: bool, message: str) -> None:
    sealed = open_box(KEY).seal("secret", context="registry 'a'")
    if tamper:
        sealed = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SecretsKeyError, match=message):
        open_box(key).open(sealed, context=context)


@pytest.mark.parametrize(
    ("key", "message"),
    [(None, "TIDEGATE_ENCRYPTION_KEY"), ("", "TIDEGATE_ENCRYPTION_KEY"), ("short", "too short")],
)
def test_needs_a_real_key(key: str | None, message: str) -> None:
    with pytest.raises(SecretsKeyError, match=message):
        open_box(key)


def test_unknown_format() -> None:
    with pytest.raises(SecretsKeyError, match="unknown format"):
        open_box(KEY).open("v9:xxxx", context="registry 'a'")
