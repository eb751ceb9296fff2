"""Maven artifact versions, ordered as Maven's `ComparableVersion` (maven-artifact 3.8) orders them.

The version is lower-cased and split into items at `.` and `-` and at every transition between
digits and letters; a `-` or a transition opens a nested list. Numbers compare as numbers;
qualifiers order `alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release < sp`,
then any other qualifier alphabetically; `a`, `b` and `m` directly followed by a digit stand for
alpha, beta and milestone. Trailing "null" items (0, "", empty lists) are dropped from each list,
so `1`, `1.0` and `1-0` are equal. Between kinds: a number beats a list, a list beats a qualifier.
Maven accepts any string; only an empty one or one with whitespace is refused here.
"""

from __future__ import annotations

import re
from functools import cmp_to_key, lru_cache
from typing import TypeAlias

from tidegate.core.versions.interface import SortKey, VersionKind, invalid

_SPACE = re.compile(r"\s")

MavenItem: TypeAlias = "int | str | tuple[MavenItem, ...]"
"""A number, a qualifier (as its sortable form, see `_qualifier`) or a nested list."""

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_SHORTHANDS = {"a": "alpha", "b": "beta", "m": "milestone"}
_RELEASE = str(_QUALIFIERS.index(""))
_DIGITS = frozenset("0123456789")


def _qualifier(text: str, followed_by_digit: bool) -> str:
    """The sortable form of a qualifier: its rank for known ones, "7-name" for the others."""
    if followed_by_digit:
        text = _SHORTHANDS.get(text, text)
    text = _ALIASES.get(text, text)
    if text in _QUALIFIERS:
        return str(_QUALIFIERS.index(text))
    return f"{len(_QUALIFIERS)}-{text}"


def _item(text: str, is_digit: bool) -> int | str:
    return int(text) if is_digit else _qualifier(text, False)


def _open_list(current: list[object]) -> list[object]:
    """Append a nested list to `current` and return it (a `-` or a digit/letter transition)."""
    nested: list[object] = []
    current.append(nested)
    return nested


def _is_null(item: MavenItem) -> bool:
    return item == 0 or item == _RELEASE or item == ()


def _freeze(items: list[object]) -> tuple[MavenItem, ...]:
    """Normalise a parsed list (inner lists first): drop trailing nulls, stepping over lists."""
    frozen: list[MavenItem] = [
        _freeze(i) if isinstance(i, list) else i  # type: ignore[misc]
        for i in items
    ]
    for index in range(len(frozen) - 1, -1, -1):
        item = frozen[index]
        if _is_null(item):
            del frozen[index]
        elif not isinstance(item, tuple):
            break
    return tuple(frozen)


@lru_cache(maxsize=65536)
def parse(version: str) -> tuple[MavenItem, ...]:
    """Parse a Maven version into ComparableVersion's item list. Raises VersionError."""
    if not version.strip() or _SPACE.search(version):
        raise invalid(VersionKind.MAVEN, version, "empty or contains whitespace")
    text = version.lower()
    root: list[object] = []
    current = root
    is_digit = False
    start = 0
    for i, c in enumerate(text):
        if c in ".-":
            current.append(0 if i == start else _item(text[start:i], is_digit))
            start = i + 1
            if c == "-":
                current = _open_list(current)
        elif c in _DIGITS:
            if not is_digit and i > start:
                current.append(_qualifier(text[start:i], True))
                current, start = _open_list(current), i
            is_digit = True
        else:
            if is_digit and i > start:
                current.append(int(text[start:i]))
                current, start = _open_list(current), i
            is_digit = False
    if len(text) > start:
        current.append(_item(text[start:], is_digit))
    return _freeze(root)


def _compare_items(a: MavenItem, b: MavenItem | None) -> int:
    """ComparableVersion's Item.compareTo: `b` None is the absent item of a shorter list."""
    if isinstance(a, int):
        if b is None:
            return 0 if a == 0 else 1
        if isinstance(b, int):
            return (a > b) - (a < b)
        return 1
    if isinstance(a, str):
        other = _RELEASE if b is None else b
        if isinstance(other, str):
            return (a > other) - (a < other)
        return -1
    if b is None:
        return next((r for r in (_compare_items(i, None) for i in a) if r), 0)
    if not isinstance(b, tuple):
        return -1 if isinstance(b, int) else 1
    for index in range(max(len(a), len(b))):
        left = a[index] if index < len(a) else None
        right = b[index] if index < len(b) else None
        if left is None:
            result = 0 if right is None else -_compare_items(right, None)
        else:
            result = _compare_items(left, right)
        if result:
            return result
    return 0


def compare(a: str, b: str) -> int:
    """Order two Maven versions: -1, 0 or 1. Raises VersionError."""
    return _compare_items(parse(a), parse(b))


_CmpKey = cmp_to_key(compare)


@lru_cache(maxsize=65536)
def sort_key(version: str) -> SortKey:
    """A key ordered as `compare` orders versions (it calls `compare`). Raises VersionError."""
    parse(version)
    return _CmpKey(version)


class MavenComparator:
    """Maven ComparableVersion ordering."""

    @property
    def kind(self) -> VersionKind:
        return VersionKind.MAVEN

    def parse(self, version: str) -> object:
        return parse(version)

    def compare(self, a: str, b: str) -> int:
        return compare(a, b)

    def sort_key(self, version: str) -> SortKey:
        return sort_key(version)
