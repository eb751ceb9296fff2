"""Debian package versions, ordered as `dpkg --compare-versions` orders them.

A version is `[epoch:]upstream[-revision]`. Upstream and revision are compared with dpkg's
`verrevcmp`: alternating runs of non-digits (compared character by character, where `~` sorts
before everything, even the end of the string, and letters sort before all other characters) and
digits (compared as numbers). Like dpkg, only structural problems are errors (an empty version,
spaces, a bad epoch, an empty upstream or revision); odd characters are only warnings to dpkg and
are accepted here.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import zip_longest

from tidegate.core.versions.interface import VersionKind, invalid

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


def _split(text: str) -> tuple[_Part, ...]:
    parts: list[_Part] = []
    i, n = 0, len(text)
    while i < n:
        start = i
        while i < n and not text[i].isdigit():
            i += 1
        weights = (*(_weight(c) for c in text[start:i]), 0)
        start = i
        while i < n and text[i].isdigit():
            i += 1
        parts.append((weights, int(text[start:i]) if i > start else 0))
    return tuple(parts)


@lru_cache(maxsize=65536)
def parse(version: str) -> DebKey:
    """Parse a Debian version into a comparison key. Raises VersionError."""
    text = version.strip()
    if not text:
        raise invalid(VersionKind.DEB, version, "empty")
    if any(c.isspace() for c in text):
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
    if not all(c.isascii() for c in text):
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
