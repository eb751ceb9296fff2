"""The compiled form of an `affected[]` entry: what matching needs of it, prepared once at import.

Evaluating an entry means validating its ranges and sorting their events with the ecosystem's
comparator: work that is the same for every installed version. The vulnerability DB stores, next to
each entry, the result of that work (`compile_entry`, run when a record is imported), and a match
evaluates from it (`evaluate_compiled`) without rebuilding the entry's dataclasses. The form also
carries what a finding needs of a matching entry (ecosystem, `ecosystem_specific`, rating), so a
match never decodes the full entry.

The form is a JSON array (`Row` once decoded):

    [record id, entry index, ecosystem, version kind | null,
     [[range index, range kind, [[event code, version], ...], [limit, ...]], ...],
     [listed version, ...], alpine "not affected" flag,
     [[key, value], ...] (ecosystem_specific), [severity, score, vector, source] | null]

Ranges are exactly what `ranges.evaluate` prepares for the ecosystem's own version kind: GIT
ranges and ranges that cannot be prepared (they are skipped, never matched) are left out, events
are sorted, limits are apart. A form compiled for one kind answers only for that kind
(`usable_for`); for any other the matcher evaluates the decoded entry.
"""

from __future__ import annotations

import json
from typing import Any

from tidegate.core.advisory import AffectedPackage, EventKind, RangeType, Rating
from tidegate.core.errors import VersionError
from tidegate.core.matching.ranges import (
    RangeMatch,
    check_version,
    kind_for_ecosystem,
    match_keyed,
    match_listed,
    prepare,
)
from tidegate.core.models import Severity
from tidegate.core.versions import VersionKind, sort_key_function

Row = list[Any]
"""One compiled entry, as `json.loads` returns it."""

_SORT_KEYS = {k.value: sort_key_function(k) for k in VersionKind}
"""Each version kind's `sort_key`, by the kind's value as a compiled range names it."""
_SEVERITIES = {s.value: s for s in Severity}

# Positions in a Row.
RECORD_ID, INDEX, ECOSYSTEM, KIND, RANGES, VERSIONS, ALPINE_NA, SPECIFIC, RATING = range(9)


def compile_entry(vuln_id: str, index: int, entry: AffectedPackage) -> str:
    """The compiled form of entry `index` of record `vuln_id`, as compact JSON."""
    kind = kind_for_ecosystem(entry.ecosystem)
    ranges: list[list[object]] = []
    if kind is not None:
        for position, rng in enumerate(entry.ranges):
            if rng.type == RangeType.GIT:
                continue
            prepared = prepare(rng, kind)
            if isinstance(prepared, str):
                continue  # skipped by `evaluate` too: it never matches
            events = [list(e) for e in prepared.events]
            ranges.append([position, prepared.kind.value, events, list(prepared.limits)])
    events_all = [e for r in entry.ranges for e in r.events]
    alpine_na = (
        not entry.versions
        and bool(events_all)
        and all(e.kind is EventKind.INTRODUCED and e.version == "0" for e in events_all)
    )
    rating = entry.rating
    row = [
        vuln_id,
        index,
        entry.ecosystem,
        kind.value if kind is not None else None,
        ranges,
        list(entry.versions),
        alpine_na,
        [list(p) for p in entry.ecosystem_specific],
        None
        if rating is None
        else [rating.severity.value, rating.score, rating.vector, rating.source],
    ]
    return json.dumps(row, separators=(",", ":"), ensure_ascii=False)


def usable_for(row: Row, kind: VersionKind) -> bool:
    """Whether `row` was compiled for `kind` (else the decoded entry must be evaluated)."""
    return bool(row[KIND] == kind.value)


def evaluate_compiled(version: str, row: Row, kind: VersionKind) -> RangeMatch | None:
    """What `ranges.evaluate(version, entry, kind).match` gives, from the compiled form.

    `row` must be `usable_for(kind)`. Raises VersionError only when `version` is not a `kind`
    version."""
    check_version(kind, version)
    return match_row(version, row, kind)


def match_row(version: str, row: Row, kind: VersionKind) -> RangeMatch | None:
    """`evaluate_compiled` for a `version` already known to be a valid `kind` version (the
    matcher checks it once per package, not once per entry)."""
    for position, range_kind, events, limits in row[RANGES]:
        try:
            found = match_keyed(_SORT_KEYS[range_kind], version, events, limits, position)
        except VersionError:  # not a version of the range's kind: the range does not match
            continue
        if found is not None:
            return found
    if row[VERSIONS]:
        return match_listed(version, tuple(row[VERSIONS]), kind, [])
    return None


def rating_of(row: Row) -> Rating | None:
    """The entry's own (per-package) rating."""
    doc = row[RATING]
    if doc is None:
        return None
    return Rating(_SEVERITIES[doc[0]], doc[1], doc[2], doc[3])


def specific_of(row: Row) -> tuple[tuple[str, str], ...]:
    """The entry's `ecosystem_specific` pairs."""
    return tuple((k, v) for k, v in row[SPECIFIC])
