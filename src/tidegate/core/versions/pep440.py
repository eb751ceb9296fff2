"""Python package versions, ordered by PEP 440 (through `packaging.version`, PyPA's own library).

A string that is not a PEP 440 version (pip's old "legacy" ordering is gone from pip and from
`packaging`) is refused with a VersionError: ordering it by guesswork would make a range decision
that no Python tool would make.
"""

from __future__ import annotations

from functools import lru_cache

from packaging.version import InvalidVersion, Version

from tidegate.core.versions.interface import SortKey, VersionKind, invalid


@lru_cache(maxsize=65536)
def parse(version: str) -> Version:
    """Parse a PEP 440 version. Raises VersionError."""
    try:
        return Version(version)
    except InvalidVersion as exc:
        raise invalid(VersionKind.PYPI, version, "not a PEP 440 version") from exc


def compare(a: str, b: str) -> int:
    """Order two PEP 440 versions: -1, 0 or 1. Raises VersionError."""
    va, vb = parse(a), parse(b)
    return (va > vb) - (va < vb)


class Pep440Comparator:
    """PEP 440 ordering."""

    @property
    def kind(self) -> VersionKind:
        return VersionKind.PYPI

    def parse(self, version: str) -> object:
        return parse(version)

    def compare(self, a: str, b: str) -> int:
        return compare(a, b)

    def sort_key(self, version: str) -> SortKey:
        return parse(version)  # `Version` objects order as `compare` orders them
