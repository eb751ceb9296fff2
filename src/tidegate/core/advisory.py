"""Vulnerability advisories as Tidegate holds them: the OSV schema's model, parsed and rated.

Feeds (vulndb/) turn records into these values; matching (core/matching) reads them. Field names
follow https://ossf.github.io/osv-schema/ so that a reader of the schema recognises them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tidegate.core.models import Severity


class RangeType(StrEnum):
    ECOSYSTEM = "ECOSYSTEM"
    SEMVER = "SEMVER"
    GIT = "GIT"
    """Commit ranges: kept, never matched against package versions."""


class EventKind(StrEnum):
    INTRODUCED = "introduced"
    FIXED = "fixed"
    LAST_AFFECTED = "last_affected"
    LIMIT = "limit"


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    version: str
    """"0" for `introduced` means "from the beginning"; "*" for `limit` means "no limit"."""


@dataclass(frozen=True, slots=True)
class Range:
    type: RangeType
    events: tuple[Event, ...]
    repo: str | None = None


@dataclass(frozen=True, slots=True)
class Rating:
    """A severity with where it came from."""

    severity: Severity
    score: float | None = None
    vector: str | None = None
    source: str = ""
    """"CVSS_V3", "CVSS_V4", "CVSS_V2", "database_specific.severity", "Debian urgency" ..."""


@dataclass(frozen=True, slots=True)
class AffectedPackage:
    """One `affected[]` entry of an OSV record."""

    ecosystem: str
    """Full OSV ecosystem, release included: "Debian:12", "Alpine:v3.18", "PyPI"."""
    name: str
    """Name as the record gives it (matching normalises it per ecosystem)."""
    purl: str | None = None
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()
    """Explicitly listed affected versions."""
    ecosystem_specific: tuple[tuple[str, str], ...] = ()
    """Flattened string facts (Debian "urgency", "tracker_kind"...), sorted by key."""
    rating: Rating | None = None
    """A per-package severity, when the record gives one."""

    def specific(self, key: str) -> str | None:
        for k, v in self.ecosystem_specific:
            if k == key:
                return v
        return None


@dataclass(frozen=True, slots=True)
class Advisory:
    """One vulnerability record."""

    id: str
    modified: datetime
    aliases: tuple[str, ...] = ()
    """`aliases` and `upstream` of the record, the ids that name the same vulnerability."""
    related: tuple[str, ...] = ()
    summary: str = ""
    details: str = ""
    published: datetime | None = None
    withdrawn: datetime | None = None
    affected: tuple[AffectedPackage, ...] = ()
    rating: Rating | None = None
    """The record's best severity (highest CVSS version present, else its own rating)."""
    references: tuple[str, ...] = ()
    fix_published: datetime | None = None
    """When the fix was published, where the feed says (e.g. the DSA's date)."""
    source: str = ""
    """Feed it came from ("osv:PyPI", "import:/path"...)."""
