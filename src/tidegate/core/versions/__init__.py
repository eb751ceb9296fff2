"""Version comparators, one module per ecosystem, behind one function: `compare(kind, a, b)`.

    deb     dpkg (`deb.py`)             apk     apk-tools (`apk.py`)
    rpm     rpmvercmp (`rpm.py`)        pypi    PEP 440 (`pep440.py`)
    npm     SemVer, npm leniency        golang  Go modules and toolchains (`semver.py`)
    semver  SemVer 2.0 (crates.io)      maven   ComparableVersion (`maven.py`)

Parsed versions are cached per comparator, so comparing the same versions again is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import assert_never

from tidegate.core.versions import apk, deb, maven, pep440, rpm, semver
from tidegate.core.versions.apk import ApkComparator
from tidegate.core.versions.deb import DebComparator
from tidegate.core.versions.interface import Comparator, SortKey, VersionKind
from tidegate.core.versions.maven import MavenComparator
from tidegate.core.versions.pep440 import Pep440Comparator
from tidegate.core.versions.rpm import RpmComparator
from tidegate.core.versions.semver import GoComparator, SemverComparator

__all__ = [
    "Comparator",
    "SortKey",
    "VersionKind",
    "comparator",
    "compare",
    "parse",
    "sort_key",
    "sort_key_function",
]


@cache
def comparator(kind: VersionKind) -> Comparator:
    """The comparator of a version kind."""
    match kind:
        case VersionKind.DEB:
            return DebComparator()
        case VersionKind.APK:
            return ApkComparator()
        case VersionKind.RPM:
            return RpmComparator()
        case VersionKind.PYPI:
            return Pep440Comparator()
        case VersionKind.NPM | VersionKind.SEMVER:
            return SemverComparator(kind)
        case VersionKind.GOLANG:
            return GoComparator()
        case VersionKind.MAVEN:
            return MavenComparator()
        case _:
            assert_never(kind)


def compare(kind: VersionKind | str, a: str, b: str) -> int:
    """Order versions `a` and `b` of ecosystem `kind`: -1, 0 or 1.

    Raises VersionError when either is not a version of that ecosystem, and ValueError for an
    unknown kind.
    """
    return comparator(VersionKind(kind)).compare(a, b)


def parse(kind: VersionKind | str, version: str) -> object:
    """Validate `version` for `kind`; raises VersionError naming the version and the ecosystem."""
    return comparator(VersionKind(kind)).parse(version)


def sort_key(kind: VersionKind | str, version: str) -> SortKey:
    """A key that orders `version` among versions of `kind` exactly as `compare` does.

    Raises VersionError when `compare` would for this version, ValueError for an unknown kind.
    """
    return comparator(VersionKind(kind)).sort_key(version)


@cache
def sort_key_function(kind: VersionKind) -> Callable[[str], SortKey]:
    """`comparator(kind).sort_key` as the module function it calls (one call less per key,
    for loops that ask for many)."""
    match kind:
        case VersionKind.DEB:
            return deb.sort_key
        case VersionKind.APK:
            return apk.sort_key
        case VersionKind.RPM:
            return rpm.sort_key
        case VersionKind.PYPI:
            return pep440.parse
        case VersionKind.NPM:
            return semver.npm_key
        case VersionKind.SEMVER:
            return semver.parse
        case VersionKind.GOLANG:
            return semver.parse_go
        case VersionKind.MAVEN:
            return maven.sort_key
        case _:
            assert_never(kind)
