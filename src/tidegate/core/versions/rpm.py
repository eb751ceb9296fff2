"""RPM package versions, ordered as rpm 4.18's `rpmvercmp` and `rpmVersionCompare` order them.

A version is `[epoch:]version[-release]`; epochs compare as numbers (missing is 0), then version
and release with `rpmvercmp`: separators (anything but letters, digits, `~` and `^`) only split
segments; numeric segments compare as numbers and beat alphabetic ones; `~` sorts before
everything, even the end of the string; `^` sorts after the end of the string but before any
other segment. A missing release compares as an empty one.
"""

from __future__ import annotations

import re
from functools import cmp_to_key, lru_cache

from tidegate.core.versions.interface import SortKey, VersionKind, invalid

_SPACE = re.compile(r"\s")

# A segment: ("~",), ("^",), ("n", number) or ("a", letters).
_Segment = tuple[str, int | str] | tuple[str]
RpmKey = tuple[int, tuple[_Segment, ...], tuple[_Segment, ...]]

_TILDE: _Segment = ("~",)
_CARET: _Segment = ("^",)


_SEGMENT = re.compile(r"([0-9]+)|([A-Za-z]+)|([~^])")
"""rpm's segments: ASCII digits, ASCII letters, and the two marks; everything else separates."""


def _segments(text: str) -> tuple[_Segment, ...]:
    out: list[_Segment] = []
    for digits, letters, mark in _SEGMENT.findall(text):
        if digits:
            out.append(("n", int(digits)))
        elif letters:
            out.append(("a", letters))
        else:
            out.append(_TILDE if mark == "~" else _CARET)
    return tuple(out)


def _vercmp(a: tuple[_Segment, ...], b: tuple[_Segment, ...]) -> int:
    i = 0
    while True:
        sa = a[i] if i < len(a) else None
        sb = b[i] if i < len(b) else None
        i += 1
        if sa == _TILDE or sb == _TILDE:
            if sa != _TILDE:
                return 1
            if sb != _TILDE:
                return -1
            continue
        if sa == _CARET or sb == _CARET:
            if sa is None:
                return -1
            if sb is None:
                return 1
            if sa != _CARET:
                return 1
            if sb != _CARET:
                return -1
            continue
        if sa is None or sb is None:
            return 0 if sa is sb else (-1 if sa is None else 1)
        if sa[0] != sb[0]:
            return 1 if sa[0] == "n" else -1  # numbers are newer than letters
        if sa != sb:
            return -1 if sa < sb else 1


@lru_cache(maxsize=65536)
def parse(version: str) -> RpmKey:
    """Parse an RPM EVR into a comparison key. Raises VersionError."""
    text = version.strip()
    if not text:
        raise invalid(VersionKind.RPM, version, "empty")
    if _SPACE.search(text):
        raise invalid(VersionKind.RPM, version, "contains whitespace")
    epoch = 0
    head, colon, rest = text.partition(":")
    if colon:
        if not head.isascii() or not head.isdigit():
            raise invalid(VersionKind.RPM, version, "epoch is not a number")
        epoch, text = int(head), rest
    ver, dash, release = text.rpartition("-")
    if not dash:
        ver, release = text, ""
    if not ver:
        raise invalid(VersionKind.RPM, version, "empty version")
    return (epoch, _segments(ver), _segments(release))


def compare(a: str, b: str) -> int:
    """Order two RPM versions: -1, 0 or 1. Raises VersionError."""
    ka, kb = parse(a), parse(b)
    if ka[0] != kb[0]:
        return -1 if ka[0] < kb[0] else 1
    return _vercmp(ka[1], kb[1]) or _vercmp(ka[2], kb[2])


_CmpKey = cmp_to_key(compare)


@lru_cache(maxsize=65536)
def sort_key(version: str) -> SortKey:
    """A key ordered as `compare` orders versions (it calls `compare`). Raises VersionError."""
    parse(version)
    return _CmpKey(version)


class RpmComparator:
    """rpmvercmp ordering of epoch:version-release."""

    @property
    def kind(self) -> VersionKind:
        return VersionKind.RPM

    def parse(self, version: str) -> object:
        return parse(version)

    def compare(self, a: str, b: str) -> int:
        return compare(a, b)

    def sort_key(self, version: str) -> SortKey:
        return sort_key(version)
