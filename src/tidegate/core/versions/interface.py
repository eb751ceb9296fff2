"""The comparator plug-in point: the version kinds Tidegate knows and what a comparator offers.

A comparator owns one ecosystem's version rules. `parse` validates a version and returns an
opaque, cached key (raising `VersionError` naming the version and the ecosystem when the string is
not a version of that ecosystem); `compare` orders two versions as -1, 0 or 1; `sort_key` gives
an object whose `<` and `==` order versions exactly as `compare` does, so that code comparing one
version against many (range matching) compares keys without a call per comparison.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

from tidegate.core.errors import VersionError


class VersionKind(StrEnum):
    """Version schemes; the values of the ecosystems Tidegate catalogues are their purl types."""

    DEB = "deb"
    APK = "apk"
    RPM = "rpm"
    PYPI = "pypi"
    NPM = "npm"
    GOLANG = "golang"
    MAVEN = "maven"
    SEMVER = "semver"
    """Plain SemVer 2.0 (crates.io, and the `SEMVER` range type of OSV records)."""


class SortKey(Protocol):
    """A version's sort key: `a < b` and `a == b` exactly when `compare` says -1 and 0."""

    def __lt__(self, other: Any, /) -> object: ...


class Comparator(Protocol):
    """One ecosystem's version ordering."""

    @property
    def kind(self) -> VersionKind: ...

    def parse(self, version: str) -> object:
        """Validate `version`; return its (cached) parsed form. Raises VersionError."""
        ...

    def compare(self, a: str, b: str) -> int:
        """-1 if a < b, 0 if they are equal versions, 1 if a > b. Raises VersionError."""
        ...

    def sort_key(self, version: str) -> SortKey:
        """The (cached) key ordering `version` as `compare` does; raises VersionError when
        `compare` would, for this version."""
        ...


def invalid(kind: VersionKind, version: str, problem: str) -> VersionError:
    """The error for a version string that `kind` cannot parse."""
    return VersionError(f"invalid {kind.value} version {version!r}: {problem}")


def sign(value: int) -> int:
    """Clamp a comparison result to -1, 0, 1."""
    return (value > 0) - (value < 0)
