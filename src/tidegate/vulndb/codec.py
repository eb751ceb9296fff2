"""The store's JSON form of advisories: Tidegate's own, already parsed and rated.

Owns encoding an `Advisory` header (every field but `affected`) and an `AffectedPackage` to compact
JSON text, and decoding them back without re-parsing or re-scoring the original feed record; and
the brief of a record (`encode_brief`): the few fields a finding shows, small enough to decode for
every matched record (core/matching/briefs.py), and an alias group's members and best rating.
Decoding trusts its input: it reads only what `encode_*` wrote into a database we built.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from tidegate.core.advisory import (
    Advisory,
    AffectedPackage,
    Event,
    EventKind,
    Range,
    RangeType,
    Rating,
)
from tidegate.core.matching.briefs import MAX_REFERENCES, RecordBrief, make_brief
from tidegate.core.models import Severity

_DECODER = json.JSONDecoder()


def loads(text: str) -> Any:
    """A JSON document this module (or compiled.py) wrote: compact, nothing around it. Skips
    what `json.loads` adds to the C scanner (two whitespace matches), which adds up over the
    thousands of small documents one match decodes."""
    return _DECODER.raw_decode(text)[0]


# Plain dict lookups: calling an enum class to convert a value costs more than the JSON parse.
_EVENT_KINDS = {k.value: k for k in EventKind}
_RANGE_TYPES = {t.value: t for t in RangeType}
_SEVERITIES = {s.value: s for s in Severity}


def encode_header(adv: Advisory) -> str:
    """The advisory without its `affected` entries (they are stored one per row)."""
    doc = {
        "id": adv.id,
        "modified": adv.modified.isoformat(),
        "aliases": list(adv.aliases),
        "related": list(adv.related),
        "summary": adv.summary,
        "details": adv.details,
        "published": _time(adv.published),
        "withdrawn": _time(adv.withdrawn),
        "rating": _rating(adv.rating),
        "references": list(adv.references),
        "fix_published": _time(adv.fix_published),
        "source": adv.source,
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def decode_header(text: str, affected: tuple[AffectedPackage, ...] = ()) -> Advisory:
    doc: dict[str, Any] = json.loads(text)
    return Advisory(
        id=doc["id"],
        modified=datetime.fromisoformat(doc["modified"]),
        aliases=tuple(doc["aliases"]),
        related=tuple(doc["related"]),
        summary=doc["summary"],
        details=doc["details"],
        published=_parse_time(doc["published"]),
        withdrawn=_parse_time(doc["withdrawn"]),
        affected=affected,
        rating=_parse_rating(doc["rating"]),
        references=tuple(doc["references"]),
        fix_published=_parse_time(doc["fix_published"]),
        source=doc["source"],
    )


def encode_brief(adv: Advisory) -> str:
    """What a finding shows of the record: `decode_brief` completes it with its alias group.

    [summary, details head (only without a summary), published, modified, fix_published,
     first references, aliases, rating]"""
    doc = [
        adv.summary,
        "" if adv.summary else adv.details[:300],
        _time(adv.published),
        adv.modified.isoformat(),
        _time(adv.fix_published),
        list(dict.fromkeys(adv.references))[:MAX_REFERENCES],
        list(adv.aliases),
        _rating_row(adv.rating),
    ]
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def encode_group(members: Iterable[str], rating: Rating | None) -> tuple[str, str | None]:
    """An alias group's (members, best rating) columns."""
    rating_text = None if rating is None else json.dumps(_rating_row(rating))
    return json.dumps(sorted(members), separators=(",", ":")), rating_text


def decode_brief(
    vuln_id: str,
    text: str,
    group: str | None,
    members: str | None,
    group_rating: str | None,
) -> RecordBrief:
    """The record's brief from its brief column and its group's columns (None: no group, and
    the group's rating is the record's own)."""
    summary, details, published, modified, fix_published, refs, aliases, rating = loads(text)
    own = _parse_rating_row(rating)
    return make_brief(
        vuln_id=vuln_id,
        group=group,
        aliases=aliases,
        members=loads(members) if members is not None else (),
        summary=summary,
        details=details,
        published=_parse_time(published),
        modified=datetime.fromisoformat(modified),
        fix_published=_parse_time(fix_published),
        references=refs,
        rating=own,
        group_rating=_group_rating(group_rating)
        if group_rating is not None
        else (own if group is None else None),
    )


def _rating_row(rating: Rating | None) -> list[Any] | None:
    if rating is None:
        return None
    return [rating.severity.value, rating.score, rating.vector, rating.source]


def _parse_rating_row(row: list[Any] | None) -> Rating | None:
    if row is None:
        return None
    key = (row[0], row[1], row[2], row[3])
    rating = _ratings.get(key)
    if rating is None:
        rating = Rating(_SEVERITIES[row[0]], row[1], row[2], row[3])
        _remember(_ratings, key, rating)
    return rating


def _group_rating(text: str) -> Rating | None:
    rating = _group_ratings.get(text)
    if rating is None:
        rating = _parse_rating_row(loads(text))
        if rating is not None:
            _remember(_group_ratings, text, rating)
    return rating


_ratings: dict[tuple[Any, ...], Rating] = {}
_group_ratings: dict[str, Rating] = {}
"""Ratings decoded so far: a few vectors and vendor ratings recur across thousands of records,
and a Rating is immutable, so briefs share them instead of building one each."""
_MAX_REMEMBERED = 8192


def _remember(memo: dict[Any, Rating], key: Any, rating: Rating) -> None:
    if len(memo) >= _MAX_REMEMBERED:
        memo.clear()
    memo[key] = rating


def encode_affected(entry: AffectedPackage) -> str:
    doc = {
        "ecosystem": entry.ecosystem,
        "name": entry.name,
        "purl": entry.purl,
        "ranges": [
            {
                "type": r.type.value,
                "repo": r.repo,
                "events": [[e.kind.value, e.version] for e in r.events],
            }
            for r in entry.ranges
        ],
        "versions": list(entry.versions),
        "ecosystem_specific": [list(p) for p in entry.ecosystem_specific],
        "rating": _rating(entry.rating),
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def decode_affected(text: str) -> AffectedPackage:
    doc: dict[str, Any] = json.loads(text)
    return AffectedPackage(
        ecosystem=doc["ecosystem"],
        name=doc["name"],
        purl=doc["purl"],
        ranges=tuple(
            Range(
                type=_RANGE_TYPES[r["type"]],
                events=tuple(Event(_EVENT_KINDS[k], v) for k, v in r["events"]),
                repo=r["repo"],
            )
            for r in doc["ranges"]
        ),
        versions=tuple(doc["versions"]),
        ecosystem_specific=tuple((k, v) for k, v in doc["ecosystem_specific"]),
        rating=_parse_rating(doc["rating"]),
    )


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _rating(rating: Rating | None) -> dict[str, Any] | None:
    if rating is None:
        return None
    return {
        "severity": rating.severity.value,
        "score": rating.score,
        "vector": rating.vector,
        "source": rating.source,
    }


def _parse_rating(doc: dict[str, Any] | None) -> Rating | None:
    if doc is None:
        return None
    return Rating(
        severity=_SEVERITIES[doc["severity"]],
        score=doc["score"],
        vector=doc["vector"],
        source=doc["source"],
    )
