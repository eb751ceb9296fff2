"""OSV records (https://ossf.github.io/osv-schema/, schema 1.0-1.7) parsed into `Advisory` values.

Owns: reading one document (JSON or YAML: a single record, a list of records, or `{"vulns": [...]}`
bulk) into raw records, and turning one raw record into an `Advisory` with its ratings.

Input is hostile. Every problem is a `FeedError` that names the input (`where`), the record id when
it is known, and the field path (`affected[2].ranges[0].events`). Unknown fields are ignored, as the
schema asks. Caps on string lengths and list sizes keep a crafted record from eating memory.

Severity, per record and per `affected[]` entry, in this order:
1. the `severity[]` CVSS vectors, scored with the `cvss` library; when a record has several, the
   newest CVSS version wins (v4 > v3.x > v2): it is the one the publisher maintains now, and NVD
   and GHSA show it first. An unparsable vector is skipped, not fatal: the rest still rates.
2. a `severity[]` entry of type "Ubuntu" (schema 1.7), a qualitative level;
3. `database_specific.severity` (GHSA "CRITICAL"/"HIGH"/"MODERATE"/"LOW", and other feeds' words);
4. per entry only: Debian's `ecosystem_specific.urgency` (unimportant -> negligible,
   "not yet assigned" -> unknown, end-of-life -> unknown) or an `ecosystem_specific.severity`.
A record with no rating of its own takes the highest of its entries' ratings. A record that rates
nothing (Alpine's secdb-derived records) has `rating=None`: the matcher shows "unknown" unless the
alias group (see store.rating_for_group) rates it.

`fix_published`: an explicit `database_specific.fix_published` (record or entry) when a feed gives
one; otherwise, for a distribution *fix* advisory (DSA, DLA, USN, RHSA, ALSA, RLSA, SUSE-SU ...)
that names a fixed version, its `published` date, because such an advisory is published together
with the fixed packages. GHSA's `github_reviewed_at` is NOT a fix date (it is when GitHub reviewed
the advisory, often long after or before the fix shipped), so GHSA records leave it empty.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
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
from tidegate.core.errors import FeedError
from tidegate.core.models import Severity

MAX_ID = 256
MAX_NAME = 2048
MAX_VERSION = 1024
MAX_SUMMARY = 64 * 1024
MAX_DETAILS = 2 * 1024 * 1024
MAX_LIST = 200_000
"""Longest accepted list (aliases, affected, events, versions...); PyPI version lists run long."""

_SEVERITY_WORDS: dict[str, Severity] = {
    "critical": Severity.CRITICAL,
    "important": Severity.HIGH,
    "high": Severity.HIGH,
    "moderate": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "negligible": Severity.NEGLIGIBLE,
    "unimportant": Severity.NEGLIGIBLE,
    "none": Severity.NEGLIGIBLE,
    "not yet assigned": Severity.UNKNOWN,
    "end-of-life": Severity.UNKNOWN,
    "unknown": Severity.UNKNOWN,
    "untriaged": Severity.UNKNOWN,
}

_CVSS_ORDER = {"CVSS_V4": 3, "CVSS_V3": 2, "CVSS_V2": 1}
"""Preference among CVSS versions in one record: newest first."""

_FIX_ADVISORY = re.compile(
    r"^(DSA|DLA|DTSA|USN|RHSA|RHBA|RHEA|ALSA|ALBA|ALEA|RLSA|RLBA|RXSA|SUSE-SU|openSUSE-SU|ELSA)-"
)
_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?)?"
    r"\s*([Zz]|[+-]\d{2}:?\d{2})?$"
)


def load_document(data: bytes, *, where: str, yaml_format: bool | None = None) -> list[object]:
    """The raw records of one document: a record, a list of records, or `{"vulns": [...]}`.

    `yaml_format` None guesses from the content (JSON starts with `{` or `[`). Raises FeedError
    when the document cannot be read at all.
    """
    if yaml_format is None:
        yaml_format = data.lstrip()[:1] not in (b"{", b"[")
    # Imported here, as `cvss` below: a process that only reads the store never loads them.
    import yaml

    try:
        text = data.decode("utf-8-sig")
        doc: object = yaml.safe_load(text) if yaml_format else json.loads(text)
    except UnicodeDecodeError as exc:
        raise FeedError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise FeedError(f"{where}: malformed JSON: {exc.msg} (line {exc.lineno})") from exc
    except yaml.YAMLError as exc:
        raise FeedError(f"{where}: malformed YAML: {_one_line(str(exc))}") from exc
    except RecursionError as exc:
        raise FeedError(f"{where}: document nested too deeply") from exc
    if isinstance(doc, list):
        return list(doc)
    if isinstance(doc, dict):
        vulns = doc.get("vulns")
        if "id" not in doc and isinstance(vulns, list):
            return list(vulns)
        return [doc]
    raise FeedError(f"{where}: expected an OSV record (an object), got {_kind(doc)}")


def record_id(raw: object) -> str | None:
    """The id of a raw record when it is a plain string of sane length, to name it in errors."""
    rid = raw.get("id") if isinstance(raw, dict) else None
    return rid if isinstance(rid, str) and len(rid) <= MAX_ID else None


def record_key(raw: object) -> tuple[str, str] | None:
    """(id, modified) of a raw record as written, without parsing it; None when not plain strings.

    Lets an incremental update skip a record that is not newer before paying for a full parse.
    """
    if not isinstance(raw, dict):
        return None
    rid, modified = raw.get("id"), raw.get("modified")
    if isinstance(rid, str) and isinstance(modified, str) and len(rid) <= MAX_ID:
        return rid, modified
    return None


def parse_record(raw: object, *, where: str, source: str = "") -> Advisory:
    """One OSV record as an `Advisory`; FeedError naming `where`, the id and the field if bad."""
    if not isinstance(raw, dict):
        raise FeedError(f"{where}: expected an OSV record (an object), got {_kind(raw)}")
    rid = raw.get("id")
    label = f"{where}: record {rid!r}" if isinstance(rid, str) and len(rid) <= MAX_ID else where
    reader = _Reader(raw, label)
    return reader.advisory(source)


class _Reader:
    """Typed access to one raw record; each failure names the record and the field path."""

    def __init__(self, raw: Mapping[str, Any], label: str) -> None:
        self.raw = raw
        self.label = label

    def fail(self, path: str, problem: str) -> FeedError:
        return FeedError(f"{self.label}: field '{path}' {problem}")

    def advisory(self, source: str) -> Advisory:
        raw = self.raw
        rid = self.text(raw, "id", "id", MAX_ID, required=True)
        if not rid.strip():
            raise self.fail("id", "is empty")
        modified = self.time(raw, "modified", required=True)
        assert modified is not None
        published = self.time(raw, "published")
        aliases = self.strings(raw, "aliases", MAX_ID) + self.strings(raw, "upstream", MAX_ID)
        affected = tuple(
            entry
            for i, item in enumerate(self.items(raw, "affected", "affected"))
            if (entry := self.affected(item, f"affected[{i}]")) is not None
        )
        db_specific = self.mapping(raw, "database_specific", "database_specific")
        rating = self.ratings(raw, "severity") or _word_rating(
            db_specific.get("severity"), "database_specific.severity"
        )
        if rating is None:
            rating = _highest(a.rating for a in affected)
        return Advisory(
            id=rid,
            modified=modified,
            aliases=tuple(dict.fromkeys(a for a in aliases if a != rid)),
            related=tuple(self.strings(raw, "related", MAX_ID)),
            summary=self.text(raw, "summary", "summary", MAX_SUMMARY),
            details=self.text(raw, "details", "details", MAX_DETAILS),
            published=published,
            withdrawn=self.time(raw, "withdrawn"),
            affected=affected,
            rating=rating,
            references=self.references(),
            fix_published=self.fix_published(rid, published, db_specific, affected),
            source=source,
        )

    def affected(self, item: object, path: str) -> AffectedPackage | None:
        if not isinstance(item, dict):
            raise self.fail(path, f"must be an object, got {_kind(item)}")
        package = self.mapping(item, "package", f"{path}.package")
        if not package:
            return None  # a GIT-only entry (no package) cannot match an installed package
        ecosystem = self.text(package, "ecosystem", f"{path}.package.ecosystem", MAX_NAME, True)
        name = self.text(package, "name", f"{path}.package.name", MAX_NAME, True)
        if not ecosystem or not name:
            raise self.fail(f"{path}.package", "needs a non-empty ecosystem and name")
        purl = self.text(package, "purl", f"{path}.package.purl", MAX_NAME) or None
        eco_specific = self.mapping(item, "ecosystem_specific", f"{path}.ecosystem_specific")
        db_specific = self.mapping(item, "database_specific", f"{path}.database_specific")
        ranges = tuple(
            r
            for j, rng in enumerate(self.items(item, "ranges", f"{path}.ranges"))
            if (r := self.range(rng, f"{path}.ranges[{j}]")) is not None
        )
        rating = (
            self.ratings(item, f"{path}.severity")
            or _word_rating(eco_specific.get("urgency"), "Debian urgency")
            or _word_rating(eco_specific.get("severity"), "ecosystem_specific.severity")
            or _word_rating(db_specific.get("severity"), "database_specific.severity")
        )
        return AffectedPackage(
            ecosystem=ecosystem,
            name=name,
            purl=purl,
            ranges=ranges,
            versions=tuple(self.strings(item, "versions", MAX_VERSION, f"{path}.versions")),
            ecosystem_specific=_flatten(eco_specific),
            rating=rating,
        )

    def range(self, item: object, path: str) -> Range | None:
        if not isinstance(item, dict):
            raise self.fail(path, f"must be an object, got {_kind(item)}")
        kind = self.text(item, "type", f"{path}.type", 64, required=True)
        try:
            rtype = RangeType(kind)
        except ValueError:
            return None  # a range type newer than this reader: ignored like an unknown field
        events: list[Event] = []
        for k, ev in enumerate(self.items(item, "events", f"{path}.events")):
            if not isinstance(ev, dict):
                raise self.fail(f"{path}.events[{k}]", f"must be an object, got {_kind(ev)}")
            for key, value in ev.items():
                try:
                    kind_ = EventKind(key)
                except ValueError:
                    continue
                events.append(Event(kind_, self.version(value, f"{path}.events[{k}].{key}")))
        repo = self.text(item, "repo", f"{path}.repo", MAX_NAME) or None
        return Range(type=rtype, events=tuple(events), repo=repo)

    def version(self, value: object, path: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(path, f"must be a string, got {_kind(value)}")
        text = str(value)  # YAML turns an unquoted `1.0` into a float; OSV means the string
        if len(text) > MAX_VERSION:
            raise self.fail(path, f"is {len(text)} characters long (limit {MAX_VERSION})")
        return text

    def ratings(self, obj: Mapping[str, Any], path: str) -> Rating | None:
        field = path.rsplit(".", 1)[-1]
        best: tuple[int, Rating] | None = None
        for i, item in enumerate(self.items(obj, field, path)):
            if not isinstance(item, dict):
                raise self.fail(f"{path}[{i}]", f"must be an object, got {_kind(item)}")
            kind = item.get("type")
            score = item.get("score")
            if not isinstance(kind, str) or not isinstance(score, str) or len(score) > 512:
                raise self.fail(f"{path}[{i}]", "needs string 'type' and 'score'")
            rating = _cvss_rating(kind, score) if kind in _CVSS_ORDER else None
            if kind == "Ubuntu":
                rating = _word_rating(score, "Ubuntu priority")
            order = _CVSS_ORDER.get(kind, 0)
            if rating is not None and (best is None or order > best[0]):
                best = (order, rating)
        return best[1] if best else None

    def references(self) -> tuple[str, ...]:
        urls: list[str] = []
        for i, item in enumerate(self.items(self.raw, "references", "references")):
            if not isinstance(item, dict):
                raise self.fail(f"references[{i}]", f"must be an object, got {_kind(item)}")
            url = self.text(item, "url", f"references[{i}].url", MAX_NAME)
            if url:
                urls.append(url)
        return tuple(dict.fromkeys(urls))

    def fix_published(
        self,
        rid: str,
        published: datetime | None,
        db_specific: Mapping[str, Any],
        affected: Sequence[AffectedPackage],
    ) -> datetime | None:
        explicit = [db_specific.get("fix_published")]
        for item in self.items(self.raw, "affected", "affected"):
            if isinstance(item, dict) and isinstance(item.get("database_specific"), dict):
                explicit.append(item["database_specific"].get("fix_published"))
        for i, value in enumerate(v for v in explicit if v is not None):
            return self.time({"fix_published": value}, "fix_published", path=f"fix_published#{i}")
        has_fix = any(
            e.kind is EventKind.FIXED for a in affected for r in a.ranges for e in r.events
        )
        return published if has_fix and _FIX_ADVISORY.match(rid) else None

    # --- typed field access -------------------------------------------------------------------

    def text(
        self, obj: Mapping[str, Any], key: str, path: str, limit: int, required: bool = False
    ) -> str:
        value = obj.get(key)
        if value is None:
            if required:
                raise self.fail(path, "is missing")
            return ""
        if not isinstance(value, str):
            raise self.fail(path, f"must be a string, got {_kind(value)}")
        if len(value) > limit:
            raise self.fail(path, f"is {len(value)} characters long (limit {limit})")
        return value

    def strings(
        self, obj: Mapping[str, Any], key: str, limit: int, path: str | None = None
    ) -> list[str]:
        path = path or key
        values = self.items(obj, key, path)
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise self.fail(f"{path}[{i}]", f"must be a string, got {_kind(value)}")
            if len(value) > limit:
                raise self.fail(f"{path}[{i}]", f"is {len(value)} characters long")
        return [str(v) for v in values]

    def items(self, obj: Mapping[str, Any], key: str, path: str) -> list[object]:
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list, got {_kind(value)}")
        if len(value) > MAX_LIST:
            raise self.fail(path, f"has {len(value)} items (limit {MAX_LIST})")
        return value

    def mapping(self, obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be an object, got {_kind(value)}")
        return value

    def time(
        self, obj: Mapping[str, Any], key: str, required: bool = False, path: str | None = None
    ) -> datetime | None:
        path = path or key
        value = obj.get(key)
        if value is None:
            if required:
                raise self.fail(path, "is missing")
            return None
        if isinstance(value, datetime):  # YAML reads unquoted timestamps as datetimes
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if not isinstance(value, str) or len(value) > 64:
            raise self.fail(path, f"must be an RFC 3339 timestamp string, got {_kind(value)}")
        parsed = parse_timestamp(value)
        if parsed is None:
            raise self.fail(path, f"is not an RFC 3339 timestamp: {value!r}")
        return parsed


def parse_timestamp(value: str) -> datetime | None:
    """An RFC 3339 timestamp (nanoseconds and a missing zone tolerated) in UTC, or None."""
    m = _TIMESTAMP.match(value.strip())
    if m is None:
        return None
    day, clock, fraction, zone = m.groups()
    text = f"{day}T{clock or '00:00:00'}"
    if clock and len(clock) == 5:
        text += ":00"
    if fraction:
        text += "." + fraction[:6].ljust(6, "0")  # datetime holds microseconds; OSV writes nanos
    if zone and zone not in ("Z", "z"):
        text += zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@functools.lru_cache(maxsize=65536)
def _cvss_rating(kind: str, vector: str) -> Rating | None:
    """A CVSS vector scored by the `cvss` library; None when the vector cannot be parsed.

    Cached: feeds repeat a few thousand distinct vectors across hundreds of thousands of records,
    and scoring one costs more than parsing the rest of a record.
    """
    import cvss

    try:
        if kind == "CVSS_V4":
            v4 = cvss.CVSS4(vector)
            score, word, clean = float(v4.base_score), str(v4.severity), v4.clean_vector()
        elif kind == "CVSS_V3":
            v3 = cvss.CVSS3(vector)
            score, word, clean = float(v3.scores()[0]), str(v3.severities()[0]), v3.clean_vector()
        else:
            v2 = cvss.CVSS2(vector)
            score, clean = float(v2.scores()[0]), v2.clean_vector()
            word = _cvss2_word(score)
    except (cvss.CVSSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    if not math.isfinite(score):
        return None
    severity = _SEVERITY_WORDS.get(word.lower(), Severity.UNKNOWN)
    return Rating(severity=severity, score=score, vector=clean, source=kind)


def _cvss2_word(score: float) -> str:
    """NVD's bands for CVSS v2, which defines no qualitative rating of its own."""
    if score >= 7.0:
        return "high"
    return "medium" if score >= 4.0 else "low"


def _word_rating(value: object, source: str) -> Rating | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    word = value.strip().rstrip("*").strip().lower()  # Debian marks urgencies "low*", "medium**"
    severity = _SEVERITY_WORDS.get(word)
    return None if severity is None else Rating(severity=severity, source=source)


def _highest(ratings: Iterator[Rating | None] | Sequence[Rating | None]) -> Rating | None:
    present = [r for r in ratings if r is not None]
    if not present:
        return None
    return max(present, key=lambda r: (r.severity.rank, r.score or 0.0))


def _flatten(specific: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Scalar facts of `ecosystem_specific` as sorted string pairs; nested values are dropped."""
    pairs = [
        (str(k), str(v).lower() if isinstance(v, bool) else str(v))
        for k, v in specific.items()
        if isinstance(v, str | int | float) and len(str(v)) <= MAX_NAME
    ]
    return tuple(sorted(pairs))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
