"""Version sort keys (`tidegate.core.versions.sort_key`), what a match compares instead of calling
`compare` per event: for every kind, two keys order exactly as `compare` orders their versions,
on every known-answer vector (ours and ../shared/vulndata) and on every pair of the versions
those vectors name; a key raises VersionError exactly when `compare` does."""

from __future__ import annotations

import random
from itertools import product
from pathlib import Path

import pytest

from tidegate.core.errors import VersionError
from tidegate.core.versions import VersionKind, compare, deb, sort_key, sort_key_function

TESTS = Path(__file__).resolve().parents[1]
FIXTURES = TESTS / "core" / "fixtures" / "versions"
SHARED = TESTS.parent / ".." / "shared" / "vulndata" / "versions"
SHARED_FILES = {
    "dpkg.tsv": VersionKind.DEB,
    "dpkg-osv-generated.tsv": VersionKind.DEB,
    "apk.tsv": VersionKind.APK,
    "apk-osv-generated.tsv": VersionKind.APK,
    "rpm.tsv": VersionKind.RPM,
    "pep440.tsv": VersionKind.PYPI,
}
MAX_PAIRS = 15_000
"""Pairs checked per file: all of them for the small files, a seeded sample of the big ones."""


def _versions(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return sorted({v for line in lines for v in line.split("\t")[:2]})


def _outcome(kind: VersionKind, a: str, b: str) -> int | None:
    """`compare(kind, a, b)`, None when it raises."""
    try:
        return compare(kind, a, b)
    except VersionError:
        return None


def _key_outcome(kind: VersionKind, a: str, b: str) -> int | None:
    """The same question answered with keys and `<` alone (as the matcher asks it)."""
    try:
        ka, kb = sort_key(kind, a), sort_key(kind, b)
    except VersionError:
        return None
    return -1 if ka < kb else (1 if kb < ka else 0)


def _check(kind: VersionKind, versions: list[str]) -> None:
    pairs = list(product(versions, repeat=2))
    if len(pairs) > MAX_PAIRS:
        pairs = random.Random(20261126).sample(pairs, MAX_PAIRS)
    wrong = [
        (a, b, want, got)
        for a, b in pairs
        if (want := _outcome(kind, a, b)) != (got := _key_outcome(kind, a, b))
    ]
    assert not wrong, wrong[:10]


@pytest.mark.parametrize("kind", list(VersionKind), ids=str)
def test_keys_order_our_vectors_as_compare(kind: VersionKind) -> None:
    _check(kind, _versions(FIXTURES / f"{kind.value}.tsv"))


@pytest.mark.parametrize(("name", "kind"), SHARED_FILES.items())
def test_keys_order_shared_vectors_as_compare(name: str, kind: VersionKind) -> None:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"shared version vectors not found at {path.resolve()}")
    _check(kind, _versions(path))


# dpkg's order where Python's tuple order would differ: "~" sorts before the end of a string,
# and an ended string compares as zeros ("1.0" == "1.00", no revision == revision "0").
DEB_CASES = [
    ("1~", "1", -1),
    ("1.0~rc1", "1.0", -1),
    ("1.0~~", "1.0~", -1),
    ("1.0", "1.00", 0),
    ("1.0", "1.0-0", 0),
    ("1.0-0~", "1.0", -1),
    ("1.0-0.1", "1.0", 1),
    ("1.0a", "1.0", 1),
    ("1.0+", "1.0", 1),
    ("1.0.0", "1.0", 1),
    ("0:1.0", "1.0", 0),
    ("1:0.1", "9.9", 1),
    ("2.0-1~deb12u1", "2.0-1", -1),
    ("2.0-1+deb12u1", "2.0-1", 1),
    ("1.0~", "1.0~0", 0),
    ("a", "~", 1),
    ("1a~", "1a", -1),
]


@pytest.mark.parametrize(("a", "b", "want"), DEB_CASES)
def test_deb_keys_at_dpkgs_edges(a: str, b: str, want: int) -> None:
    assert compare(VersionKind.DEB, a, b) == want
    assert _key_outcome(VersionKind.DEB, a, b) == want
    assert _key_outcome(VersionKind.DEB, b, a) == -want


@pytest.mark.parametrize(
    ("kind", "version"),
    [
        (VersionKind.DEB, ""),
        (VersionKind.DEB, "1.0 beta"),
        (VersionKind.DEB, "x:1.0"),
        (VersionKind.DEB, "1.0-"),
        (VersionKind.DEB, "1.0é"),
        (VersionKind.RPM, " "),
        (VersionKind.PYPI, "not a version"),
        (VersionKind.NPM, "1.x.y"),
        (VersionKind.GOLANG, "vX"),
        (VersionKind.SEMVER, "1.0.0-"),
        (VersionKind.MAVEN, "1 0"),
    ],
)
def test_a_key_raises_where_compare_raises(kind: VersionKind, version: str) -> None:
    with pytest.raises(VersionError):
        compare(kind, version, "1.0")
    with pytest.raises(VersionError):
        sort_key(kind, version)
    with pytest.raises(VersionError):
        sort_key_function(kind)(version)


def test_apk_orders_any_string_so_its_key_never_raises() -> None:
    assert compare(VersionKind.APK, "1.0_foo", "1.0") == _key_outcome(
        VersionKind.APK, "1.0_foo", "1.0"
    )
    assert _key_outcome(VersionKind.APK, "garbage", "1.0") is not None


@pytest.mark.parametrize("kind", list(VersionKind), ids=str)
def test_the_comparator_and_the_function_give_the_same_key(kind: VersionKind) -> None:
    for version in _versions(FIXTURES / f"{kind.value}.tsv")[:50]:
        try:
            want = sort_key(kind, version)
        except VersionError:
            continue
        got = sort_key_function(kind)(version)
        assert not want < got, version
        assert not got < want, version


def test_the_dotted_fast_path_gives_the_general_key() -> None:
    """Dotted numeric upstream versions ("1.2.10", "2.0.0.1") take a shortcut past the run
    splitting; it must give the very key the general path gives."""
    rng = random.Random(7)
    numbers = ("0", "00", "1", "2", "9", "10", "099", "123456789")
    for _ in range(20_000):
        text = ".".join(rng.choice(numbers) for _ in range(rng.randrange(1, 6)))
        assert deb._padded_dotted(text) == deb._padded_runs(text), text
