"""SemVer 2.0 ordering, with the leniency the npm, Go and crates ecosystems need.

Accepted on top of strict SemVer: surrounding whitespace, a leading `=` and/or `v` (npm's loose
form and Go's `v1.2.3`), a missing minor or patch (read as 0), and leading zeros in numbers.
Build metadata (`+build`, Go's `+incompatible`) is ignored, as SemVer says. Go pseudo-versions
(`v0.0.0-20191109021931-daa7c04131f5`, `v1.2.4-0.2019...`) are SemVer pre-releases and order
correctly as such. The Go comparator also reads Go toolchain versions (`go1.21.0`, `go1.20rc1`,
`1.9beta2`), the versions the Go standard library is matched by.
"""

from __future__ import annotations

import re
from functools import lru_cache

from tidegate.core.versions.interface import SortKey, VersionKind, invalid

_Ident = tuple[int, int, str]
"""A pre-release identifier: (0, number, "") for numeric ones, (1, 0, text) for the others, so
that numeric identifiers sort before alphanumeric ones."""

SemverKey = tuple[int, int, int, int, tuple[_Ident, ...]]
"""(major, minor, patch, 1 when a release / 0 when a pre-release, pre-release identifiers)."""

_SEMVER = re.compile(
    r"^(?P<major>[0-9]+)(?:\.(?P<minor>[0-9]+))?(?:\.(?P<patch>[0-9]+))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_GO_TOOLCHAIN = re.compile(
    r"^(?:go)?(?P<major>[0-9]+)(?:\.(?P<minor>[0-9]+))?(?:\.(?P<patch>[0-9]+))?"
    r"(?P<pre>(?:alpha|beta|rc)[0-9]+)?$"
)
_GO_PRE = re.compile(r"^(alpha|beta|rc)([0-9]+)$")


def _ident(text: str) -> _Ident:
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


@lru_cache(maxsize=65536)
def parse(version: str, kind: VersionKind = VersionKind.SEMVER) -> SemverKey:
    """Parse a semantic version (npm / crates leniency). Raises VersionError naming `kind`."""
    text = version.strip().removeprefix("=").lstrip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    m = _SEMVER.match(text)
    if m is None:
        raise invalid(kind, version, "not a semantic version")
    pre = m["pre"]
    idents: tuple[_Ident, ...] = ()
    if pre is not None:
        parts = pre.split(".")
        if not all(parts):
            raise invalid(kind, version, "empty pre-release identifier")
        idents = tuple(_ident(p) for p in parts)
    return (
        int(m["major"]),
        int(m["minor"] or 0),
        int(m["patch"] or 0),
        0 if pre is not None else 1,
        idents,
    )


@lru_cache(maxsize=65536)
def parse_go(version: str) -> SemverKey:
    """Parse a Go module version (`v1.2.3`) or a Go toolchain version. Raises VersionError."""
    m = _GO_TOOLCHAIN.match(version.strip())
    if m is None or m["minor"] is None:
        return parse(version, VersionKind.GOLANG)
    pre = m["pre"]
    idents: tuple[_Ident, ...] = ()
    if pre is not None:
        pm = _GO_PRE.match(pre)
        assert pm is not None  # the toolchain pattern only admits this shape
        idents = ((1, 0, pm[1]), (0, int(pm[2]), ""))
    return (int(m["major"]), int(m["minor"]), int(m["patch"] or 0), 0 if pre else 1, idents)


@lru_cache(maxsize=65536)
def npm_key(version: str) -> SemverKey:
    """`parse` for npm (errors name npm): a key ordered as npm versions compare."""
    return parse(version, VersionKind.NPM)


def _order(a: SemverKey, b: SemverKey) -> int:
    return (a > b) - (a < b)


def compare(a: str, b: str) -> int:
    """Order two semantic versions: -1, 0 or 1. Raises VersionError."""
    return _order(parse(a), parse(b))


def compare_go(a: str, b: str) -> int:
    """Order two Go versions: -1, 0 or 1. Raises VersionError."""
    return _order(parse_go(a), parse_go(b))


class SemverComparator:
    """SemVer 2.0 ordering for npm, crates.io and OSV `SEMVER` ranges."""

    def __init__(self, kind: VersionKind = VersionKind.SEMVER) -> None:
        self._kind = kind

    @property
    def kind(self) -> VersionKind:
        return self._kind

    def parse(self, version: str) -> object:
        return parse(version, self._kind)

    def compare(self, a: str, b: str) -> int:
        return _order(parse(a, self._kind), parse(b, self._kind))

    def sort_key(self, version: str) -> SortKey:
        return parse(version, self._kind)  # plain tuples, ordered as `compare` orders them


class GoComparator:
    """Go module versions (semver, pseudo-versions, +incompatible) and Go toolchain versions."""

    @property
    def kind(self) -> VersionKind:
        return VersionKind.GOLANG

    def parse(self, version: str) -> object:
        return parse_go(version)

    def compare(self, a: str, b: str) -> int:
        return compare_go(a, b)

    def sort_key(self, version: str) -> SortKey:
        return parse_go(version)
