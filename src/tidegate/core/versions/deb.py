"""Debian package versions, ordered as `dpkg --compare-versions` orders them.

A version is `[epoch:]upstream[-revision]`. Upstream and revision are compared with dpkg's
`verrevcmp`: alternating runs of non-digits (compared character by character, where `~` sorts
before everything, even the end of the string, and letters sort before all other characters) and
digits (compared as numbers). Like dpkg, only structural problems are errors (an empty version,
spaces, a bad epoch, an empty upstream or revision); odd characters are only warnings to dpkg and
are accepted here.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import zip_longest

from tidegate.core.versions.interface import VersionKind, invalid

_SPACE = re.compile(r"\s")

_Part = tuple[tuple[int, ...], int]
"""A run of non-digits (as dpkg character weights, ended by 0) and the number that follows it."""

_EMPTY_PART: _Part = ((0,), 0)
"""What a string that ran out compares as: dpkg treats the end as weight 0 and number 0."""

DebKey = tuple[int, tuple[_Part, ...], tuple[_Part, ...]]


def _weight(char: str) -> int:
    # dpkg's order(): letters by their code, '~' before everything, other characters after letters.
    if char.isascii() and char.isalpha():
        return ord(char)
    if char == "~":
        return -1
    return ord(char) + 256


_RUNS = re.compile(r"([^0-9]*)([0-9]*)")
_WEIGHTS = {chr(code): _weight(chr(code)) for code in range(128)}
_run_weights: dict[str, tuple[int, ...]] = {}
"""Weights of the non-digit runs seen so far ("." "-" "+deb" "~rc"...: a small set, reused)."""


def _weights(run: str) -> tuple[int, ...]:
    weights = _run_weights.get(run)
    if weights is None:
        weights = (*(_WEIGHTS[c] for c in run), 0)
        if len(_run_weights) < 4096:
            _run_weights[run] = weights
    return weights


def _split(text: str) -> tuple[_Part, ...]:
    return tuple(
        (_weights(letters), int(digits) if digits else 0)
        for letters, digits in _RUNS.findall(text)
        if letters or digits  # findall ends with an empty match
    )


@lru_cache(maxsize=65536)
def parse(version: str) -> DebKey:
    """Parse a Debian version into a comparison key. Raises VersionError."""
    text = version.strip()
    if not text:
        raise invalid(VersionKind.DEB, version, "empty")
    if _SPACE.search(text):
        raise invalid(VersionKind.DEB, version, "contains whitespace")
    epoch = 0
    if ":" in text:
        epoch_text, text = text.split(":", 1)
        if not epoch_text.isascii() or not epoch_text.isdigit():
            raise invalid(VersionKind.DEB, version, "epoch is not a number")
        epoch = int(epoch_text)
        if not text:
            raise invalid(VersionKind.DEB, version, "nothing after the epoch's colon")
    upstream, dash, revision = text.rpartition("-")
    if not dash:
        upstream, revision = text, ""
    elif not revision:
        raise invalid(VersionKind.DEB, version, "empty revision after '-'")
    if not upstream:
        raise invalid(VersionKind.DEB, version, "empty upstream version")
    if not text.isascii():
        raise invalid(VersionKind.DEB, version, "non-ASCII characters")
    return (epoch, _split(upstream), _split(revision))


def _compare_parts(a: tuple[_Part, ...], b: tuple[_Part, ...]) -> int:
    for pa, pb in zip_longest(a, b, fillvalue=_EMPTY_PART):
        if pa != pb:
            return -1 if pa < pb else 1
    return 0


def compare(a: str, b: str) -> int:
    """Order two Debian versions: -1, 0 or 1. Raises VersionError."""
    ka, kb = parse(a), parse(b)
    if ka[0] != kb[0]:
        return -1 if ka[0] < kb[0] else 1
    return _compare_parts(ka[1], kb[1]) or _compare_parts(ka[2], kb[2])


class DebComparator:
    """dpkg version ordering."""

    @property
    def kind(self) -> VersionKind:
        return VersionKind.DEB

    def parse(self, version: str) -> object:
        return parse(version)

    def compare(self, a: str, b: str) -> int:
        return compare(a, b)
