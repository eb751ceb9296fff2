"""Match catalogued packages against advisories: one finding per vulnerability per package.

Pure: the advisories come from an `AdvisorySource` (the vulnerability DB implements it). Every
match keeps its evidence; records that name one vulnerability under several ids (CVE, GHSA,
DEBIAN-CVE, PYSEC ...) are merged into one finding shown under its CVE.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, runtime_checkable

from tidegate.core.advisory import Advisory, AffectedPackage, EventKind, Rating
from tidegate.core.errors import VersionError
from tidegate.core.matching.briefs import RecordBrief, display_id
from tidegate.core.matching.compiled import (
    ALPINE_NA,
    ECOSYSTEM,
    INDEX,
    KIND,
    RECORD_ID,
    Row,
    match_row,
    rating_of,
    specific_of,
)
from tidegate.core.matching.ecosystems import Query, queries_for
from tidegate.core.matching.ranges import RangeMatch, check_version, evaluate
from tidegate.core.models import (
    Finding,
    FixState,
    MatchEvidence,
    OSInfo,
    Package,
    Severity,
    Unknown,
)

MATCHER = "tidegate-osv"


class AdvisorySource(Protocol):
    """What matching needs of a vulnerability DB."""

    def advisories_for(
        self, ecosystem: str, name: str
    ) -> Sequence[tuple[Advisory, AffectedPackage]]: ...

    def group_id(self, vuln_id: str) -> str | None: ...

    def aliases_of(self, vuln_id: str) -> set[str]: ...

    def rating_for_group(self, vuln_id: str) -> Rating | None: ...


@runtime_checkable
class BatchAdvisorySource(AdvisorySource, Protocol):
    """A source that answers a whole catalogue at once (the DB: a few queries instead of
    several per package) and decodes a record's header only when an entry of it matches.
    The matcher uses it when the source offers it; the findings are the same."""

    def entries_for_many(
        self, keys: Iterable[tuple[str, str]]
    ) -> Mapping[tuple[str, str], Sequence[tuple[str, AffectedPackage]]]:
        """(record id, entry) pairs per (ecosystem, name), as `advisories_for` finds them."""
        ...

    def header(self, vuln_id: str) -> Advisory | None: ...

    def prefetch(self, vuln_ids: Iterable[str]) -> None:
        """A hint: the headers and alias groups of these records will be asked for."""
        ...


@runtime_checkable
class CompiledAdvisorySource(BatchAdvisorySource, Protocol):
    """A batching source that also stores each entry's compiled form (`compiled.py`): the
    matcher evaluates from it and never decodes an entry, except the rare one compiled for
    another version kind than the package's (`entry` gives it). The findings are the same."""

    def compiled_for_many(
        self, keys: Iterable[tuple[str, str]]
    ) -> Mapping[tuple[str, str], Sequence[Row]]:
        """Compiled entries per (ecosystem, name), in `advisories_for` order."""
        ...

    def entry(self, vuln_id: str, index: int) -> AffectedPackage | None: ...


@runtime_checkable
class BriefAdvisorySource(CompiledAdvisorySource, Protocol):
    """A compiled source that also stores each record's brief (`briefs.py`): the matcher
    builds findings from the briefs of the matched records, read in one batch, and never
    decodes a record header or asks about alias groups one by one. The findings are the same."""

    def briefs(self, vuln_ids: Iterable[str]) -> Mapping[str, RecordBrief]:
        """The brief of each of these records that exists."""
        ...


@dataclass(frozen=True, slots=True)
class _Hit:
    advisory: Advisory
    entry: _EntryFacts
    query: Query
    match: RangeMatch


@dataclass(frozen=True, slots=True)
class _EntryFacts:
    """What a finding needs of the entry that matched."""

    ecosystem: str
    specific: tuple[tuple[str, str], ...]
    rating: Rating | None

    def get(self, key: str) -> str | None:
        return next((v for k, v in self.specific if k == key), None)


@dataclass(frozen=True, slots=True)
class _Candidate:
    """An entry that contains the installed version, before its record is read."""

    record_id: str
    record: Callable[[], Advisory | None]
    entry: _EntryFacts
    query: Query
    match: RangeMatch


@dataclass(slots=True)
class MatchOutcome:
    findings: list[Finding] = field(default_factory=list)
    unknowns: list[Unknown] = field(default_factory=list)


def match_packages(
    packages: Iterable[Package], os: OSInfo | None, source: AdvisorySource
) -> MatchOutcome:
    """Every vulnerability affecting `packages` (of an image whose distribution is `os`)."""
    with _gc_paused():
        return _match_packages(packages, os, source)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while matching.

    A match allocates hundreds of thousands of small containers (decoded entries, findings) and
    frees almost all of them by reference counting; left on, the collector rescans every live
    object of the process again and again meanwhile (measured: about 40% of a large match).
    Nothing here makes reference cycles that need it, and it is turned back on afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            _age_young_objects()
            gc.enable()


def _age_young_objects() -> None:
    """Move the objects allocated meanwhile to the oldest generation without scanning them.

    Turned back on, the collector would otherwise start with a young generation holding every
    object the match kept (the findings, the store's caches) and scan them all at the next
    allocation: a quarter of a CLI scan's match time, spent finding no garbage. `freeze` and
    `unfreeze` move whole generation lists (constant time); the objects are then looked at by
    the next full collection, as they would have been once they aged. Skipped when someone
    else froze objects (a pre-fork server): unfreezing would hand theirs back too."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


def _match_packages(
    packages: Iterable[Package], os: OSInfo | None, source: AdvisorySource
) -> MatchOutcome:
    outcome = MatchOutcome()
    planned = [(pkg, queries_for(pkg, os)) for pkg in packages]
    matching = _memo(_matcher(planned, source))
    per_package = [(pkg, _candidates(pkg, queries, matching, outcome)) for pkg, queries in planned]
    if isinstance(source, BriefAdvisorySource):
        briefs = source.briefs({c.record_id for _, found in per_package for c in found})
        for pkg, found in per_package:
            outcome.findings.extend(_brief_findings(pkg, found, briefs))
        outcome.findings.sort(key=_finding_order)
        return outcome
    if isinstance(source, BatchAdvisorySource):
        source.prefetch({c.record_id for _, found in per_package for c in found})
    for pkg, found in per_package:
        hits = [
            _Hit(advisory, c.entry, c.query, c.match)
            for c in found
            # None: the record vanished from a live source between the two reads
            if (advisory := c.record()) is not None
        ]
        outcome.findings.extend(_merge(pkg, hits, source))
    outcome.findings.sort(key=_finding_order)
    return outcome


def _finding_order(finding: Finding) -> tuple[str, str, str]:
    return (finding.package.name, finding.package.version, finding.id)


_Matching = Callable[[Query], list[_Candidate]]
"""The entries that contain a query's version; raises VersionError when that version is bad."""


def _candidates(
    pkg: Package, queries: list[Query], matching: _Matching, outcome: MatchOutcome
) -> list[_Candidate]:
    found: list[_Candidate] = []
    for query in queries:
        try:
            found.extend(matching(query))
        except VersionError as exc:
            where = pkg.locations[0].path if pkg.locations else pkg.name
            reason = f"{pkg.name} {query.version}: not matched, {exc}"
            outcome.unknowns.append(Unknown(where, reason, MATCHER))
            break
    return found


def _memo(matching: _Matching) -> _Matching:
    """Evaluate each distinct query once: the binary packages of one source package ask the
    same (source name, version) question."""
    done: dict[Query, list[_Candidate]] = {}

    def memo(query: Query) -> list[_Candidate]:
        found = done.get(query)
        if found is None:
            found = done[query] = matching(query)
        return found

    return memo


def _matcher(planned: list[tuple[Package, list[Query]]], source: AdvisorySource) -> _Matching:
    """How to find the entries holding a query's version: from compiled entries fetched for the
    whole catalogue when the source has them, else from decoded entries (one batched fetch when
    the source can batch, records read only for entries that match; else one call per query)."""
    keys = {(q.lookup, q.name) for _, qs in planned for q in qs}
    if isinstance(source, CompiledAdvisorySource):
        return partial(_compiled, source, source.compiled_for_many(keys))
    if isinstance(source, BatchAdvisorySource):
        batch = source
        found = batch.entries_for_many(keys)

        def batched(query: Query) -> list[_Candidate]:
            entries = found.get((query.lookup, query.name), ())
            return _decoded(query, ((v, partial(batch.header, v), a) for v, a in entries))

        return batched

    def single(query: Query) -> list[_Candidate]:
        entries = source.advisories_for(query.lookup, query.name)
        return _decoded(query, ((adv.id, _const(adv), aff) for adv, aff in entries))

    return single


def _const(adv: Advisory) -> Callable[[], Advisory]:
    return lambda: adv


def _decoded(
    query: Query, entries: Iterable[tuple[str, Callable[[], Advisory | None], AffectedPackage]]
) -> list[_Candidate]:
    found: list[_Candidate] = []
    for vid, record, affected in entries:
        if not query.covers(affected.ecosystem) or _alpine_not_affected(query, affected):
            continue
        result = evaluate(query.version, affected, query.kind)
        if result.match is not None:
            facts = _EntryFacts(affected.ecosystem, affected.ecosystem_specific, affected.rating)
            found.append(_Candidate(vid, record, facts, query, result.match))
    return found


def _compiled(
    source: CompiledAdvisorySource, rows: Mapping[tuple[str, str], Sequence[Row]], query: Query
) -> list[_Candidate]:
    found: list[_Candidate] = []
    version, kind = query.version, query.kind
    kind_value = kind.value
    alpine = query.family == "Alpine"
    # An entry of exactly the ecosystem looked up is about the query's release (or language):
    # only the others need `covers` (a family lookup sees every release of the family).
    own = query.lookup if query.release is None or query.lookup == query.release else None
    checked = False
    for row in rows.get((query.lookup, query.name), ()):
        ecosystem: str = row[ECOSYSTEM]
        if (ecosystem != own and not query.covers(ecosystem)) or (alpine and row[ALPINE_NA]):
            continue
        if not checked:  # the package's version, checked once (raises VersionError)
            check_version(kind, version)
            checked = True
        vid: str = row[RECORD_ID]
        if row[KIND] == kind_value:
            match = match_row(version, row, kind)
        else:
            affected = source.entry(vid, row[INDEX])
            match = None if affected is None else evaluate(version, affected, kind).match
        if match is not None:
            facts = _EntryFacts(ecosystem, specific_of(row), rating_of(row))
            found.append(_Candidate(vid, partial(source.header, vid), facts, query, match))
    return found


def _alpine_not_affected(query: Query, affected: AffectedPackage) -> bool:
    """Alpine's secdb lists a CVE under the pseudo fix version "0" when it never affected the
    package in that branch. Converted to OSV, that reads "introduced 0" with nothing closing it;
    Alpine publishes no unfixed vulnerabilities, so such an entry means "not affected"."""
    if query.family != "Alpine" or affected.versions:
        return False
    events = [e for r in affected.ranges for e in r.events]
    return bool(events) and all(e.kind is EventKind.INTRODUCED and e.version == "0" for e in events)


def _merge(pkg: Package, hits: list[_Hit], source: AdvisorySource) -> list[Finding]:
    """Group the hits of one package by vulnerability (alias group), one finding each."""
    groups: dict[str, list[_Hit]] = {}
    for hit in hits:
        key = source.group_id(hit.advisory.id) or hit.advisory.id
        groups.setdefault(key, []).append(hit)
    return [_finding(pkg, key, group, source) for key, group in groups.items()]


def _finding(pkg: Package, key: str, hits: list[_Hit], source: AdvisorySource) -> Finding:
    ids = {h.advisory.id for h in hits} | {a for h in hits for a in h.advisory.aliases}
    ids |= source.aliases_of(hits[0].advisory.id)
    display = _display_id(key, ids)
    fixed = sorted({v for h in hits for v in h.match.fixed})
    group_rating = source.rating_for_group(hits[0].advisory.id)
    rating, severity_source = _rating(
        [(h.advisory.id, h.advisory.rating, h.entry.rating) for h in hits], group_rating
    )
    first = hits[0].advisory
    return Finding(
        id=display,
        aliases=tuple(sorted(ids - {display})),
        package=pkg,
        status=_status([h.entry for h in hits], bool(fixed)),
        fixed_versions=tuple(fixed),
        severity=rating.severity if rating else Severity.UNKNOWN,
        score=_score(rating, group_rating),
        severity_source=severity_source,
        cvss_vector=rating.vector if rating and rating.vector else None,
        summary=next((h.advisory.summary for h in hits if h.advisory.summary), first.details[:300]),
        published=min((h.advisory.published for h in hits if h.advisory.published), default=None),
        modified=max(h.advisory.modified for h in hits),
        fix_published=min(
            (h.advisory.fix_published for h in hits if h.advisory.fix_published), default=None
        ),
        references=tuple(dict.fromkeys(r for h in hits for r in h.advisory.references))[:20],
        evidence=tuple(
            MatchEvidence(
                record_id=h.advisory.id,
                ecosystem=h.entry.ecosystem,
                searched_name=h.query.name,
                matched_on=h.query.matched_on,
                range=h.match.range,
                matcher=MATCHER,
            )
            for h in hits
        ),
    )


def _display_id(key: str, ids: set[str]) -> str:
    return display_id(key, ids)


def _brief_findings(
    pkg: Package, found: list[_Candidate], briefs: Mapping[str, RecordBrief]
) -> list[Finding]:
    """`_merge` from the records' briefs: one finding per alias group of the matched records."""
    groups: dict[str, list[tuple[_Candidate, RecordBrief]]] = {}
    for candidate in found:
        brief = briefs.get(candidate.record_id)
        if brief is not None:  # None: the record vanished from a live source meanwhile
            groups.setdefault(brief.group, []).append((candidate, brief))
    return [
        _single_finding(pkg, *pairs[0]) if len(pairs) == 1 else _brief_finding(pkg, pairs)
        for pairs in groups.values()
    ]


def _evidence(candidate: _Candidate) -> MatchEvidence:
    return MatchEvidence(
        record_id=candidate.record_id,
        ecosystem=candidate.entry.ecosystem,
        searched_name=candidate.query.name,
        matched_on=candidate.query.matched_on,
        range=candidate.match.range,
        matcher=MATCHER,
    )


def _single_finding(pkg: Package, candidate: _Candidate, brief: RecordBrief) -> Finding:
    """The finding of one matched entry: the record's pieces as its brief holds them."""
    fixed = candidate.match.fixed
    if len(fixed) > 1:
        fixed = tuple(sorted(set(fixed)))
    group_rating = brief.group_rating
    rating, severity_source = _rating(
        ((brief.id, brief.rating, candidate.entry.rating),), group_rating
    )
    return Finding(
        id=brief.display,
        aliases=brief.aliases,
        package=pkg,
        status=_status((candidate.entry,), bool(fixed)),
        fixed_versions=fixed,
        severity=rating.severity if rating else Severity.UNKNOWN,
        score=_score(rating, group_rating),
        severity_source=severity_source,
        cvss_vector=rating.vector if rating and rating.vector else None,
        summary=brief.summary,
        published=brief.published,
        modified=brief.modified,
        fix_published=brief.fix_published,
        references=brief.references,
        evidence=(_evidence(candidate),),
    )


def _brief_finding(pkg: Package, pairs: list[tuple[_Candidate, RecordBrief]]) -> Finding:
    """The finding of several matched entries of one alias group (as `_finding` merges them)."""
    first = pairs[0][1]
    ids: set[str] = set().union(*(b.ids for _, b in pairs))
    display = display_id(first.group, ids)
    fixed = sorted({v for c, _ in pairs for v in c.match.fixed})
    group_rating = first.group_rating
    rating, severity_source = _rating(
        [(b.id, b.rating, c.entry.rating) for c, b in pairs], group_rating
    )
    return Finding(
        id=display,
        aliases=tuple(sorted(ids - {display})),
        package=pkg,
        status=_status([c.entry for c, _ in pairs], bool(fixed)),
        fixed_versions=tuple(fixed),
        severity=rating.severity if rating else Severity.UNKNOWN,
        score=_score(rating, group_rating),
        severity_source=severity_source,
        cvss_vector=rating.vector if rating and rating.vector else None,
        summary=next((b.summary for _, b in pairs if b.has_summary), first.summary),
        published=min((b.published for _, b in pairs if b.published), default=None),
        modified=max(b.modified for _, b in pairs),
        fix_published=min((b.fix_published for _, b in pairs if b.fix_published), default=None),
        references=tuple(dict.fromkeys(r for _, b in pairs for r in b.references))[:20],
        evidence=tuple(_evidence(c) for c, _ in pairs),
    )


_DEFERRED = frozenset({"no-dsa", "postponed"})
_WONT_FIX = frozenset({"ignored", "end-of-life", "will-not-fix", "wont-fix"})


def _status(entries: Sequence[_EntryFacts], has_fix: bool) -> FixState:
    if has_fix:
        return FixState.FIXED
    kinds = {e.get("tracker_kind") or "" for e in entries}
    kinds |= {e.get("status") or "" for e in entries}
    if kinds & _WONT_FIX:
        return FixState.WONT_FIX
    if kinds & _DEFERRED:
        return FixState.FIX_DEFERRED
    return FixState.AFFECTED


def _is_cvss(rating: Rating | None) -> bool:
    return rating is not None and rating.score is not None and rating.vector is not None


_Rated = tuple[str, Rating | None, Rating | None]
"""(record id, the record's rating, the matched entry's own rating) of one hit."""


def _rating(hits: Sequence[_Rated], group: Rating | None) -> tuple[Rating | None, str]:
    """The severity to show: the record's CVSS, else the distribution's own rating of this
    package (Debian urgency: what the vendor thinks of it in this release), else the CVSS of
    another record of the same vulnerability, else any rating the record has."""
    for vid, record, _ in hits:
        if record is not None and _is_cvss(record):
            return record, f"{record.source} ({vid})"
    for vid, _, entry in hits:
        if entry is not None and entry.severity is not Severity.UNKNOWN:
            return entry, f"{entry.source} ({vid})"
    if group is not None:
        return group, f"{group.source} (alias group of {hits[0][0]})"
    for vid, record, _ in hits:
        if record is not None:
            return record, f"{record.source} ({vid})"
    return None, ""


def _score(shown: Rating | None, group: Rating | None) -> float | None:
    """A CVSS score even when the shown severity is the vendor's: controls need a number."""
    if shown is not None and shown.score is not None:
        return shown.score
    return group.score if group is not None else None
