"""OSV range semantics: is a version inside an `affected[]` entry, and through which range.

Follows https://ossf.github.io/osv-schema/#affectedranges-field. Each range's events are sorted by
version (`introduced: "0"` first, `limit: "*"` last) and walked in order: an `introduced` at or
below the version makes it affected, a `fixed` at or below it or a `last_affected` below it makes
it unaffected again. `limit` events bound the whole range from above. `ECOSYSTEM` ranges use the
ecosystem's comparator, `SEMVER` ranges SemVer; `GIT` ranges (commits) are never matched against
package versions. The explicit `versions` list is consulted when no range matches.

A record is hostile input: a range holding a version its comparator cannot parse is skipped and
reported in `RangeEvaluation.skipped`, never a crash. The installed version itself must parse
(a VersionError from `evaluate` means the package, not the record, has a bad version).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cmp_to_key, lru_cache
from typing import Any

from tidegate.core.advisory import AffectedPackage, Event, EventKind, Range, RangeType
from tidegate.core.errors import VersionError
from tidegate.core.versions import Comparator, SortKey, VersionKind, comparator

_SEMVER_KINDS = frozenset({VersionKind.NPM, VersionKind.GOLANG, VersionKind.SEMVER})


@dataclass(frozen=True, slots=True)
class RangeMatch:
    """Why a version is affected: the interval of a range (or the listed version) it falls in."""

    range: str
    """Human readable: "introduced 0, fixed 3.0.11-1~deb12u2", "listed version 1.2.3"."""
    fixed: tuple[str, ...] = ()
    """The fixed version(s) closing the matched interval; empty when no fix is known."""
    last_affected: str | None = None
    """The `last_affected` closing the interval, when that is how the record bounds it."""
    range_index: int | None = None
    """Index of the matched range in `AffectedPackage.ranges`; None for the `versions` list."""


@dataclass(frozen=True, slots=True)
class SkippedRange:
    """A range (or the `versions` list) that could not be evaluated, and why."""

    range_index: int | None
    """Index in `AffectedPackage.ranges`; None for the `versions` list or the whole entry."""
    reason: str


@dataclass(frozen=True, slots=True)
class RangeEvaluation:
    """The outcome of evaluating one `affected[]` entry for one version."""

    match: RangeMatch | None
    """The first range (in record order) that contains the version, else None."""
    skipped: tuple[SkippedRange, ...] = ()
    """Ranges that were not evaluated because the record holds versions that do not parse."""


INTRODUCED, FIXED, LAST_AFFECTED = 0, 1, 2
"""Event codes of a prepared range (limits are kept apart)."""
_CODES = {EventKind.INTRODUCED: INTRODUCED, EventKind.FIXED: FIXED}
_NAMES = ("introduced", "fixed", "last_affected")

PreparedEvent = tuple[int, str]
"""(event code, version): plain pairs, so that a compiled form (`compiled.py`) read from JSON
lists can be evaluated as it is."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A range made ready to evaluate: validated, events sorted, limits apart."""

    kind: VersionKind
    events: tuple[PreparedEvent, ...]
    limits: tuple[str, ...]


def evaluate(version: str, affected: AffectedPackage, kind: VersionKind) -> RangeEvaluation:
    """Evaluate `affected` for `version` of ecosystem `kind`.

    Raises VersionError only when `version` itself is not a valid `kind` version.
    """
    check_version(kind, version)
    skipped: list[SkippedRange] = []
    match: RangeMatch | None = None
    for index, rng in enumerate(affected.ranges):
        if rng.type == RangeType.GIT:
            continue
        prepared = prepare(rng, kind)
        if isinstance(prepared, str):
            skipped.append(SkippedRange(index, prepared))
            continue
        try:
            found = _match_range(version, prepared.kind, prepared.events, prepared.limits, index)
        except VersionError as exc:  # the version does not parse as this range's kind
            skipped.append(SkippedRange(index, str(exc)))
            continue
        if match is None:
            match = found
    if match is None and affected.versions:
        match = match_listed(version, affected.versions, kind, skipped)
    if not affected.ranges and not affected.versions:
        skipped.append(SkippedRange(None, "entry has neither ranges nor versions"))
    return RangeEvaluation(match, tuple(skipped))


@lru_cache(maxsize=65536)
def check_version(kind: VersionKind, version: str) -> None:
    """Raise VersionError unless `version` parses; a package's version is checked against every
    entry naming it, so remember the ones that passed (failures are not cached: they raise)."""
    comparator(kind).parse(version)


def is_affected(version: str, affected: AffectedPackage, kind: VersionKind) -> RangeMatch | None:
    """The range `version` falls in, or None. Skipped ranges: see `evaluate`."""
    return evaluate(version, affected, kind).match


def _range_kind(rng: Range, kind: VersionKind) -> VersionKind:
    if rng.type == RangeType.SEMVER and kind not in _SEMVER_KINDS:
        return VersionKind.SEMVER
    return kind


@lru_cache(maxsize=16384)
def prepare(rng: Range, kind: VersionKind) -> Prepared | str:
    """Validate and sort a range's events, or say why it cannot be evaluated."""
    if not rng.events:
        return "range has no events"
    range_kind = _range_kind(rng, kind)
    cmp = comparator(range_kind)
    for event in rng.events:
        if not _is_open_bound(event):
            try:
                cmp.parse(event.version)
            except VersionError as exc:
                return f"{event.kind.value} event: {exc}"
    events = [e for e in rng.events if e.kind != EventKind.LIMIT]
    limits = tuple(e.version for e in rng.events if e.kind == EventKind.LIMIT)
    if not any(e.kind == EventKind.INTRODUCED for e in events):
        # The schema requires an `introduced`; without one, reading the range as starting at 0
        # can only over-report, never hide a vulnerable version.
        events.insert(0, Event(EventKind.INTRODUCED, "0"))
    events.sort(key=cmp_to_key(_event_order(cmp)))
    pairs = tuple((_CODES.get(e.kind, LAST_AFFECTED), e.version) for e in events)
    # A version is inside the limits when it is below any of them; "*" lifts the bound.
    return Prepared(range_kind, pairs, () if "*" in limits else limits)


def _is_open_bound(event: Event) -> bool:
    return (event.kind == EventKind.INTRODUCED and event.version == "0") or (
        event.kind == EventKind.LIMIT and event.version == "*"
    )


def _event_order(cmp: Comparator) -> Callable[[Event, Event], int]:
    def order(a: Event, b: Event) -> int:
        a_zero = a.kind == EventKind.INTRODUCED and a.version == "0"
        b_zero = b.kind == EventKind.INTRODUCED and b.version == "0"
        if a_zero or b_zero:
            return b_zero - a_zero
        return cmp.compare(a.version, b.version)

    return order


def _match_range(
    version: str,
    kind: VersionKind,
    events: Sequence[Sequence[Any]],
    limits: Sequence[str],
    index: int,
) -> RangeMatch | None:
    # The plain walk with `compare`, kept as the reference that `match_keyed` (what a match
    # from compiled entries runs) is tested against.
    compare = comparator(kind).compare
    if limits and not any(compare(version, lim) < 0 for lim in limits):
        return None
    opened: int | None = None
    for position, (code, at) in enumerate(events):
        if code == INTRODUCED:
            if at == "0" or compare(version, at) >= 0:
                opened = position
        elif opened is not None:
            # A `fixed` at or below the version, or a `last_affected` below it, closes it.
            order = compare(version, at)
            if order >= 0 if code == FIXED else order > 0:
                opened = None
    if opened is None:
        return None
    return _describe(events, limits, opened, index)


def match_keyed(
    key: Callable[[str], SortKey],
    version: str,
    events: Sequence[Sequence[Any]],
    limits: Sequence[str],
    index: int,
) -> RangeMatch | None:
    """`_match_range` with the range kind's `sort_key` (`sort_key_function`): one key per
    version, cached by the comparators, compared with `<` alone instead of a `compare` call
    per event. Decides and raises VersionError exactly as `_match_range` does."""
    try:
        at_key = key(version)
    except VersionError as exc:
        return _match_unkeyed(exc, events, limits, index)
    if limits and not any(at_key < key(lim) for lim in limits):
        return None
    opened: int | None = None
    for position, (code, at) in enumerate(events):
        if code == INTRODUCED:
            if at == "0" or not at_key < key(at):
                opened = position
        elif opened is not None and (
            # A `fixed` at or below the version, or a `last_affected` below it, closes it.
            (not at_key < key(at)) if code == FIXED else key(at) < at_key
        ):
            opened = None
    if opened is None:
        return None
    return _describe(events, limits, opened, index)


def _match_unkeyed(
    error: VersionError, events: Sequence[Sequence[Any]], limits: Sequence[str], index: int
) -> RangeMatch | None:
    """A range walked for a version that is not of the range's kind (a SEMVER range of a Debian
    entry, say): it decides only if it never compares that version, so `error` is raised at the
    first comparison the walk would make, exactly as `compare` would raise it there."""
    if limits:
        raise error
    opened: int | None = None
    for position, (code, at) in enumerate(events):
        if code != INTRODUCED and opened is None:
            continue
        if code != INTRODUCED or at != "0":
            raise error
        opened = position
    return None if opened is None else _describe(events, limits, opened, index)


def _describe(
    events: Sequence[Sequence[Any]], limits: Sequence[str], opened: int, index: int
) -> RangeMatch:
    start = events[opened][1]
    closing = next((e for e in events[opened + 1 :] if e[0] != INTRODUCED), None)
    words = [f"introduced {start}"]
    if closing is not None:
        words.append(f"{_NAMES[closing[0]]} {closing[1]}")
    words.extend(f"limit {lim}" for lim in limits)
    return RangeMatch(
        range=", ".join(words),
        fixed=(closing[1],) if closing and closing[0] == FIXED else (),
        last_affected=closing[1] if closing and closing[0] == LAST_AFFECTED else None,
        range_index=index,
    )


def match_listed(
    version: str, listed: tuple[str, ...], kind: VersionKind, skipped: list[SkippedRange]
) -> RangeMatch | None:
    cmp = comparator(kind)
    bad: list[str] = []
    for candidate in listed:
        if candidate == version:
            return RangeMatch(range=f"listed version {candidate}")
        try:
            if cmp.compare(version, candidate) == 0:
                return RangeMatch(range=f"listed version {candidate}")
        except VersionError:
            bad.append(candidate)
    if bad:
        shown = ", ".join(repr(b) for b in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        skipped.append(SkippedRange(None, f"invalid {kind.value} versions listed: {shown}{more}"))
    return None


_ECOSYSTEM_KINDS = {
    "debian": VersionKind.DEB,
    "ubuntu": VersionKind.DEB,
    "alpine": VersionKind.APK,
    "wolfi": VersionKind.APK,
    "chainguard": VersionKind.APK,
    "red hat": VersionKind.RPM,
    "almalinux": VersionKind.RPM,
    "rocky linux": VersionKind.RPM,
    "opensuse": VersionKind.RPM,
    "suse": VersionKind.RPM,
    "mageia": VersionKind.RPM,
    "photon os": VersionKind.RPM,
    "openeuler": VersionKind.RPM,
    "azure linux": VersionKind.RPM,
    "pypi": VersionKind.PYPI,
    "npm": VersionKind.NPM,
    "go": VersionKind.GOLANG,
    "maven": VersionKind.MAVEN,
    "crates.io": VersionKind.SEMVER,
}


def kind_for_ecosystem(ecosystem: str) -> VersionKind | None:
    """The version kind of an OSV ecosystem ("Debian:12" -> deb); None when Tidegate has none."""
    name = ecosystem.split(":", 1)[0].strip().lower()
    return _ECOSYSTEM_KINDS.get(name)
