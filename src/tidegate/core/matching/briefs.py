"""A record's brief: what a finding needs of a matched advisory, resolved once per record.

A match ends with one finding per vulnerability per package, and most findings come from one
record. Building each from the full `Advisory` repeats per finding what depends only on the
record: its alias group and the group's members and best rating, the id to show, the sorted
aliases. A `RecordBrief` holds those pieces, computed once when the record is read (`make_brief`),
so that a single-record finding is assembled from it without further work. A source that stores
briefs (the vulnerability DB) hands them out in one batch for the matched records only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from tidegate.core.advisory import Rating


@dataclass(frozen=True, slots=True)
class RecordBrief:
    """The parts of one advisory record a finding shows, and its alias group resolved."""

    id: str
    group: str
    """The alias group id (the record id when it is in no group): one finding per group."""
    ids: frozenset[str]
    """The record id, its own aliases and every member of its alias group."""
    display: str
    """The id a finding of this record alone shows (`display_id(group, ids)`)."""
    aliases: tuple[str, ...]
    """`ids` without `display`, sorted: a finding of this record alone shows these."""
    summary: str
    """The record's summary, or the first 300 characters of its details when it has none."""
    has_summary: bool
    """Whether `summary` is the record's own summary (a finding prefers one that is)."""
    published: datetime | None
    modified: datetime
    fix_published: datetime | None
    references: tuple[str, ...]
    """The record's first `MAX_REFERENCES` references (all a finding ever shows)."""
    rating: Rating | None
    group_rating: Rating | None
    """The best rating among the stored records of the alias group (`rating_for_group`)."""


MAX_REFERENCES = 20
"""References a finding shows at most."""


def display_id(group: str, ids: Iterable[str]) -> str:
    """The id a finding shows: the lowest CVE among `ids`, else the group id."""
    cves = sorted(i for i in ids if i.startswith("CVE-"))
    return cves[0] if cves else group


def make_brief(
    *,
    vuln_id: str,
    group: str | None,
    aliases: Iterable[str],
    members: Iterable[str],
    summary: str,
    details: str,
    published: datetime | None,
    modified: datetime,
    fix_published: datetime | None,
    references: Iterable[str],
    rating: Rating | None,
    group_rating: Rating | None,
) -> RecordBrief:
    """The brief of a record; `members` are its alias group's ids (empty when it has none)."""
    key = group or vuln_id
    ids = frozenset((vuln_id, *aliases, *members))
    shown = display_id(key, ids)
    return RecordBrief(
        id=vuln_id,
        group=key,
        ids=ids,
        display=shown,
        aliases=tuple(sorted(ids - {shown})),
        summary=summary or details[:300],
        has_summary=bool(summary),
        published=published,
        modified=modified,
        fix_published=fix_published,
        references=tuple(dict.fromkeys(references))[:MAX_REFERENCES],
        rating=rating,
        group_rating=group_rating,
    )
