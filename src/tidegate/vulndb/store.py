"""The local vulnerability database: one SQLite file, the "DB snapshot" every verdict names.

Owns the file format (tables below), the read API the matcher uses (`VulnStore`), and the only
way to change a database: `build()`, which copies the live file, applies changes to the copy,
verifies it and swaps it in with `os.replace`. A reader never sees a half-written database, and an
interrupted or failed build leaves the previous one in service (readers that have it open keep it).

Tables
    meta        key/value: schema version, snapshot id, build time
    sources     one row per feed: url, ETag, last update, newest `modified` seen
    advisories  one row per record: id, modified (µs since epoch), published, source, group id,
                rating columns (severity, score, source, vector), aliases (JSON), the parsed
                header as JSON (codec.py), and the record's brief: the few fields a finding shows
                (core/matching/briefs.py), what a match decodes of the records it matched
    affected    one row per `affected[]` entry: full ecosystem ("Debian:12"), its family
                ("Debian"), the normalised package name, the entry as JSON, and its compiled
                form (core/matching/compiled.py: ranges validated and sorted at import, what a
                match evaluates); indexed by (ecosystem, name) and (family, name), and by
                both again with the compiled form (`_LOOKUP_INDEXES`): a match reads a name's
                compiled entries from one run of index pages, not from a table row scattered
                anywhere in the file per entry
    aliases     every id and alias seen -> its alias group (aliases.py)
    groups      one row per alias group: its members (JSON) and best rating (`rating_for_group`),
                computed at build, so a match resolves a record's group with its brief in one
                query
    withdrawn   tombstones of withdrawn ids, so an older copy imported later does not come back

The snapshot id is a sha256 over the sorted (id, modified) pairs: two databases holding the same
record versions have the same id, whatever order or time they were built in.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from operator import itemgetter
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import quote

from tidegate.core.advisory import Advisory, AffectedPackage, Rating
from tidegate.core.errors import VulnDBError
from tidegate.core.matching.briefs import RecordBrief
from tidegate.core.matching.compiled import INDEX, RECORD_ID, Row, compile_entry
from tidegate.core.models import Severity
from tidegate.vulndb import codec
from tidegate.vulndb.aliases import compute_groups

SCHEMA_VERSION = "3"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (
    name TEXT PRIMARY KEY, url TEXT, etag TEXT, last_update TEXT, last_modified TEXT
);
CREATE TABLE advisories (
    id TEXT PRIMARY KEY,
    modified INTEGER NOT NULL,
    published TEXT,
    source TEXT NOT NULL,
    group_id TEXT,
    severity TEXT,
    score REAL,
    rating_source TEXT,
    vector TEXT,
    aliases TEXT NOT NULL,
    header TEXT NOT NULL,
    brief TEXT NOT NULL
);
CREATE INDEX advisories_group ON advisories (group_id);
CREATE INDEX advisories_source ON advisories (source);
CREATE TABLE affected (
    advisory_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    ecosystem TEXT NOT NULL,
    family TEXT NOT NULL,
    name TEXT NOT NULL,
    entry TEXT NOT NULL,
    compiled TEXT NOT NULL,
    PRIMARY KEY (advisory_id, idx)
);
CREATE INDEX affected_ecosystem_name ON affected (ecosystem, name);
CREATE INDEX affected_family_name ON affected (family, name);
CREATE TABLE aliases (member TEXT PRIMARY KEY, group_id TEXT NOT NULL);
CREATE INDEX aliases_group ON aliases (group_id);
CREATE TABLE groups (group_id TEXT PRIMARY KEY, members TEXT NOT NULL, rating TEXT);
CREATE TABLE withdrawn (id TEXT PRIMARY KEY, modified INTEGER NOT NULL);
"""

_LOOKUP_INDEXES = (
    "CREATE INDEX IF NOT EXISTS affected_ecosystem_lookup ON affected (ecosystem, name, compiled)",
    "CREATE INDEX IF NOT EXISTS affected_family_lookup ON affected (family, name, compiled)",
)
"""The matcher's look-up indexes, covering what it reads. Made when a build finishes (one
sorted pass, not one index update per imported row); a database built before they existed
reads the same rows through the narrow (ecosystem, name) and (family, name) indexes until its
next update or import. The narrow ones stay: look-ups that read the full entry from the table
(`advisories_for`, `entry`) walk them faster than the wide ones."""

_PEP503 = re.compile(r"[-_.]+")
_CVSS_PREFERENCE = {"CVSS_V4": 3, "CVSS_V3": 2, "CVSS_V2": 1}
_CHUNK = 400
_ID_AND_INDEX = itemgetter(RECORD_ID, INDEX)
"""Names per `IN (...)` query: well under SQLite's 999-variable floor of old builds."""


def ecosystem_family(ecosystem: str) -> str:
    """ "Debian:12" -> "Debian", "Alpine:v3.18" -> "Alpine", "PyPI" -> "PyPI"."""
    return ecosystem.split(":", 1)[0]


def normalize_name(ecosystem: str, name: str) -> str:
    """The package name as the store indexes it.

    PyPI names are compared by PEP 503 (`Foo_Bar` == `foo-bar`). Every other ecosystem keeps its
    name as written: npm names are lowercase today and legacy mixed-case packages are distinct;
    Maven `group:artifact`, Go module paths, crates and distribution package names are exact.
    """
    if ecosystem_family(ecosystem) == "PyPI":
        return _PEP503.sub("-", name).lower()
    return name


def to_micros(value: datetime) -> int:
    """A timestamp as integer microseconds since the epoch: exact, and ordered as numbers."""
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    """"osv.dev:PyPI", "import:/path/to/file" ..."""
    url: str | None
    count: int
    """Advisories in the database that came from this source."""
    last_update: datetime | None
    last_modified: datetime | None
    """Newest `modified` among the records this source delivered."""


@dataclass(frozen=True, slots=True)
class StoreStatus:
    path: str
    snapshot_id: str
    built_at: datetime | None
    advisories: int
    affected_rows: int
    ecosystems: tuple[tuple[str, int], ...]
    """(ecosystem family, advisories naming it), sorted by family."""
    sources: tuple[SourceStatus, ...]

    def age(self, now: datetime) -> timedelta | None:
        return None if self.built_at is None else now - self.built_at


class VulnStore:
    """Read access to a database snapshot; safe to share between threads.

    Decoded records are kept in a bounded cache: an open snapshot never changes (a new build
    replaces the file, and this connection keeps reading the one it opened), and one scan asks
    for the same records many times (every binary package of a source package, every re-scan).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, cache_size: int = 50_000) -> None:
        self._conn = conn
        self._path = path
        self._lock = threading.Lock()
        self._headers: _LRU[str, Advisory] = _LRU(cache_size)
        self._results: _LRU[tuple[str, str, str], tuple[tuple[Advisory, AffectedPackage], ...]]
        self._results = _LRU(cache_size)
        # Alias groups never change within a snapshot either; a scan asks about each group
        # several times (group id, members, best rating) for every package it affects.
        self._group_of: _LRU[str, tuple[str | None]] = _LRU(cache_size * 4)
        self._members: _LRU[str, frozenset[str]] = _LRU(cache_size)
        self._group_rating: _LRU[str, tuple[Rating | None]] = _LRU(cache_size)
        self._entries: _LRU[tuple[str, str, str], tuple[tuple[str, AffectedPackage], ...]]
        self._entries = _LRU(cache_size)
        self._header_text: _LRU[str, str] = _LRU(cache_size * 4)
        self._compiled: _LRU[tuple[str, str, str], tuple[Row, ...]] = _LRU(cache_size)
        self._briefs: _LRU[str, RecordBrief] = _LRU(cache_size)

    @classmethod
    def open(cls, path: Path | str, *, readonly: bool = True) -> VulnStore:
        """Open an existing database; VulnDBError when it is missing or not one of ours."""
        path = Path(path)
        if not path.is_file():
            raise VulnDBError(f"{path}: no vulnerability database (run `tidegate db update`)")
        mode = "ro" if readonly else "rw"
        try:
            conn = sqlite3.connect(
                f"file:{quote(str(path.resolve()))}?mode={mode}", uri=True, check_same_thread=False
            )
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise VulnDBError(f"{path}: not a Tidegate vulnerability database ({exc})") from exc
        if row is None or row[0] != SCHEMA_VERSION:
            conn.close()
            found = row[0] if row else "none"
            raise VulnDBError(
                f"{path}: database schema {found}, this Tidegate reads {SCHEMA_VERSION}; "
                "rebuild it with `tidegate db update`"
            )
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> VulnStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise VulnDBError(f"{self._path}: cannot read the database ({exc})") from exc

    def advisories_for(self, ecosystem: str, name: str) -> list[tuple[Advisory, AffectedPackage]]:
        """Every (advisory, affected entry) naming this package, in advisory id order.

        `ecosystem` with a release ("Debian:12") matches that release only; a bare family
        ("Debian", "PyPI") matches every release. The name is normalised (`normalize_name`).
        The Advisory carries every field but `affected` (the pair's entry is the one that named
        the package); `advisory(id)` gives the whole record.
        """
        column = "ecosystem" if ":" in ecosystem else "family"
        key = (column, ecosystem, normalize_name(ecosystem, name))
        cached = self._results.get(key)
        if cached is not None:
            return list(cached)
        rows = self._rows(
            "SELECT a.id, a.header, f.entry "
            "FROM affected f JOIN advisories a ON a.id = f.advisory_id "
            f"WHERE f.{column} = ? AND f.name = ? ORDER BY f.advisory_id, f.idx",
            key[1:],
        )
        found = tuple(
            (self._header(str(vid), str(header)), codec.decode_affected(str(entry)))
            for vid, header, entry in rows
        )
        self._results.put(key, found)
        return list(found)

    def entries_for_many(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], list[tuple[str, AffectedPackage]]]:
        """(record id, affected entry) naming each (ecosystem, name), in a few queries.

        What one scan asks: one query per ecosystem and chunk of names instead of one per
        package, and the records' headers are kept undecoded until `header` asks for one (a
        matcher needs the header of the few entries that match, not of every entry it reads).
        Keys are looked up exactly as `advisories_for` looks them up.
        """
        wanted: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
        for ecosystem, name in keys:
            column = "ecosystem" if ":" in ecosystem else "family"
            key = (column, ecosystem, normalize_name(ecosystem, name))
            wanted.setdefault(key, []).append((ecosystem, name))
        by_lookup: dict[tuple[str, str], list[str]] = {}
        for column, ecosystem, name in wanted:
            if self._entries.get((column, ecosystem, name)) is None:
                by_lookup.setdefault((column, ecosystem), []).append(name)
        for (column, ecosystem), names in by_lookup.items():
            for start in range(0, len(names), _CHUNK):
                self._load(column, ecosystem, names[start : start + _CHUNK])
        out: dict[tuple[str, str], list[tuple[str, AffectedPackage]]] = {}
        for key, asked in wanted.items():
            found = list(self._entries.get(key) or ())
            for original in asked:
                out[original] = found
        return out

    def compiled_for_many(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], list[Row]]:
        """The compiled entries (core/matching/compiled.py) naming each (ecosystem, name), in
        (record id, entry index) order, looked up as `advisories_for` looks them up.

        What a scan matches from: one query per ecosystem and chunk of names, one JSON document
        per name (SQLite joins a name's compiled entries), no dataclass per entry.
        """
        wanted: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
        for ecosystem, name in keys:
            column = "ecosystem" if ":" in ecosystem else "family"
            key = (column, ecosystem, normalize_name(ecosystem, name))
            wanted.setdefault(key, []).append((ecosystem, name))
        have: dict[tuple[str, str, str], tuple[Row, ...]] = {}
        by_lookup: dict[tuple[str, str], list[str]] = {}
        for key in wanted:
            cached = self._compiled.get(key)
            if cached is None:
                by_lookup.setdefault(key[:2], []).append(key[2])
            else:
                have[key] = cached
        for (column, ecosystem), names in by_lookup.items():
            for start in range(0, len(names), _CHUNK):
                have.update(self._load_compiled(column, ecosystem, names[start : start + _CHUNK]))
        out: dict[tuple[str, str], list[Row]] = {}
        for key, asked in wanted.items():
            found = list(have[key])
            for original in asked:
                out[original] = found
        return out

    def _load_compiled(
        self, column: str, ecosystem: str, names: list[str]
    ) -> dict[tuple[str, str, str], tuple[Row, ...]]:
        marks = ",".join("?" * len(names))
        rows = self._rows(
            f"SELECT name, '[' || group_concat(compiled, ',') || ']' FROM affected "
            f"WHERE {column} = ? AND name IN ({marks}) GROUP BY name",
            (ecosystem, *names),
        )
        texts = {str(name): str(text) for name, text in rows}
        found: dict[tuple[str, str, str], tuple[Row, ...]] = {}
        for name in names:
            text = texts.get(name)
            entries: list[Row] = codec.loads(text) if text is not None else []
            # group_concat's order is unspecified: restore `advisories_for`'s order.
            entries.sort(key=_ID_AND_INDEX)
            key = (column, ecosystem, name)
            found[key] = tuple(entries)
            self._compiled.put(key, found[key])
        return found

    def entry(self, vuln_id: str, index: int) -> AffectedPackage | None:
        """Entry `index` of record `vuln_id`, decoded; None when there is no such entry."""
        rows = self._rows(
            "SELECT entry FROM affected WHERE advisory_id = ? AND idx = ?", (vuln_id, index)
        )
        return codec.decode_affected(str(rows[0][0])) if rows else None

    def _load(self, column: str, ecosystem: str, names: list[str]) -> None:
        """Fill the entry cache for these names of one ecosystem (or family).

        Entries only: most entries a scan reads do not match, and their records' headers are
        bigger than the entries themselves (`prefetch` loads the headers of those that do)."""
        marks = ",".join("?" * len(names))
        rows = self._rows(
            "SELECT name, advisory_id, entry FROM affected "
            f"WHERE {column} = ? AND name IN ({marks}) ORDER BY advisory_id, idx",
            (ecosystem, *names),
        )
        found: dict[str, list[tuple[str, AffectedPackage]]] = {n: [] for n in names}
        for name, vid, entry in rows:
            found[str(name)].append((str(vid), codec.decode_affected(str(entry))))
        for name, pairs in found.items():
            self._entries.put((column, ecosystem, name), tuple(pairs))

    def header(self, vuln_id: str) -> Advisory | None:
        """The record `vuln_id` without its `affected` entries (decoded once, then cached)."""
        adv = self._headers.get(vuln_id)
        if adv is not None:
            return adv
        text = self._header_text.get(vuln_id)
        if text is None:
            rows = self._rows("SELECT header FROM advisories WHERE id = ?", (vuln_id,))
            if not rows:
                return None
            text = str(rows[0][0])
        return self._header(vuln_id, text)

    def prefetch(self, vuln_ids: Iterable[str]) -> None:
        """Load the headers and alias groups (members, best rating) of these records in a few
        queries, so that `header`, `group_id`, `aliases_of` and `rating_for_group` answer them
        from memory."""
        missing = sorted({v for v in vuln_ids if self._headers.get(v) is None})
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for vid, group, header in self._rows(
                f"SELECT id, group_id, header FROM advisories WHERE id IN ({marks})", tuple(chunk)
            ):
                self._group_of.put(str(vid), (str(group) if group is not None else None,))
                self._header_text.put(str(vid), str(header))
        groups: set[str] = set()
        for vuln_id in missing:
            group = self.group_id(vuln_id)
            if group is not None and self._members.get(group) is None:
                groups.add(group)
        ordered = sorted(groups)
        for start in range(0, len(ordered), _CHUNK):
            self._load_groups(ordered[start : start + _CHUNK])

    def briefs(self, vuln_ids: Iterable[str]) -> dict[str, RecordBrief]:
        """The brief of each of these records that exists (core/matching/briefs.py): the fields
        a finding shows, with the alias group resolved; one query per chunk of ids."""
        out: dict[str, RecordBrief] = {}
        missing: list[str] = []
        for vid in dict.fromkeys(vuln_ids):
            cached = self._briefs.get(vid)
            if cached is None:
                missing.append(vid)
            else:
                out[vid] = cached
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for rid, brief, group, members, rating in self._rows(
                "SELECT a.id, a.brief, a.group_id, g.members, g.rating FROM advisories a "
                f"LEFT JOIN groups g ON g.group_id = a.group_id WHERE a.id IN ({marks})",
                tuple(chunk),
            ):
                found = codec.decode_brief(
                    str(rid), str(brief), _opt(group), _opt(members), _opt(rating)
                )
                self._briefs.put(found.id, found)
                out[found.id] = found
        return out

    def _load_groups(self, chunk: list[str]) -> None:
        marks = ",".join("?" * len(chunk))
        members: dict[str, set[str]] = {g: set() for g in chunk}
        for group, member in self._rows(
            f"SELECT group_id, member FROM aliases WHERE group_id IN ({marks})", tuple(chunk)
        ):
            members[str(group)].add(str(member))
        ratings: dict[str, list[Rating]] = {g: [] for g in chunk}
        # The rating columns hold the whole rating: no header of a group member is decoded.
        for group, severity, score, vector, rsource in self._rows(
            "SELECT group_id, severity, score, vector, rating_source FROM advisories "
            f"WHERE group_id IN ({marks}) AND severity IS NOT NULL",
            tuple(chunk),
        ):
            ratings[str(group)].append(_rating_of(severity, score, vector, rsource))
        for group in chunk:
            self._members.put(group, frozenset(members[group]))
            best = max(ratings[group], key=_rating_preference) if ratings[group] else None
            self._group_rating.put(group, (best,))

    def _cached_group(self, vuln_id: str) -> str | None:
        cached = self._group_of.get(vuln_id)
        return cached[0] if cached is not None else None

    def _header(self, vuln_id: str, text: str) -> Advisory:
        adv = self._headers.get(vuln_id)
        if adv is None:
            adv = codec.decode_header(text)
            self._headers.put(vuln_id, adv)
        return adv

    def advisory(self, vuln_id: str) -> Advisory | None:
        """The whole record with this id, or None."""
        rows = self._rows("SELECT header FROM advisories WHERE id = ?", (vuln_id,))
        if not rows:
            return None
        entries = self._rows(
            "SELECT entry FROM affected WHERE advisory_id = ? ORDER BY idx", (vuln_id,)
        )
        affected = tuple(codec.decode_affected(str(e[0])) for e in entries)
        return codec.decode_header(str(rows[0][0]), affected)

    def group_id(self, vuln_id: str) -> str | None:
        """The display id of the alias group (its CVE when it has one); None if unknown."""
        cached = self._group_of.get(vuln_id)
        if cached is not None:
            return cached[0]
        rows = self._rows("SELECT group_id FROM aliases WHERE member = ?", (vuln_id,))
        group = str(rows[0][0]) if rows else None
        self._group_of.put(vuln_id, (group,))
        return group

    def aliases_of(self, vuln_id: str) -> set[str]:
        """The other ids of this id's alias group (stored records and ids they only mention)."""
        group = self.group_id(vuln_id)
        if group is None:
            return set()
        members = self._members.get(group)
        if members is None:
            rows = self._rows("SELECT member FROM aliases WHERE group_id = ?", (group,))
            members = frozenset(str(r[0]) for r in rows)
            self._members.put(group, members)
        return set(members) - {vuln_id}

    def rating_for_group(self, vuln_id: str) -> Rating | None:
        """The best rating among the stored records of this id's alias group.

        A CVSS score beats a qualitative rating; among CVSS ratings the newest version wins (as
        within one record), then the higher score. So a Debian record rated only by urgency
        shows the CVSS of its GHSA alias.
        """
        group = self.group_id(vuln_id) or vuln_id
        cached = self._group_rating.get(group)
        if cached is not None:
            return cached[0]
        rows = self._rows(
            "SELECT severity, score, vector, rating_source FROM advisories "
            "WHERE (group_id = ? OR id = ?) AND severity IS NOT NULL",
            (group, vuln_id),
        )
        ratings = [_rating_of(*row) for row in rows]
        best = max(ratings, key=_rating_preference) if ratings else None
        self._group_rating.put(group, (best,))
        return best

    def ecosystems(self) -> list[str]:
        """Every full ecosystem named by some entry ("Alpine:v3.18", "Debian:12", "PyPI" ...)."""
        return [str(r[0]) for r in self._rows("SELECT DISTINCT ecosystem FROM affected ORDER BY 1")]

    def snapshot_id(self) -> str:
        return self._meta("snapshot_id") or ""

    def _meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def source_state(self, name: str) -> tuple[str | None, datetime | None]:
        """(ETag, newest modified) recorded for a source: for conditional, incremental updates."""
        rows = self._rows("SELECT etag, last_modified FROM sources WHERE name = ?", (name,))
        if not rows:
            return None, None
        etag, last = rows[0]
        return (str(etag) if etag else None), _parse(last)

    def status(self) -> StoreStatus:
        counts = {
            str(s): int(str(n))
            for s, n in self._rows("SELECT source, count(*) FROM advisories GROUP BY source")
        }
        sources = tuple(
            SourceStatus(str(n), _opt(u), counts.get(str(n), 0), _parse(lu), _parse(lm))
            for n, u, lu, lm in self._rows(
                "SELECT name, url, last_update, last_modified FROM sources ORDER BY name"
            )
        )
        families = self._rows(
            "SELECT family, count(DISTINCT advisory_id) FROM affected GROUP BY family ORDER BY 1"
        )
        return StoreStatus(
            path=str(self._path),
            snapshot_id=self.snapshot_id(),
            built_at=_parse(self._meta("built_at")),
            advisories=int(str(self._rows("SELECT count(*) FROM advisories")[0][0])),
            affected_rows=int(str(self._rows("SELECT count(*) FROM affected")[0][0])),
            ecosystems=tuple((str(f), int(str(n))) for f, n in families),
            sources=sources,
        )


K = TypeVar("K")
V = TypeVar("V")


class _LRU(Generic[K, V]):
    """A bounded, thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            if len(self._data) > self._size:
                self._data.popitem(last=False)


def _rating_preference(rating: Rating) -> tuple[int, int, float, int]:
    order = _CVSS_PREFERENCE.get(rating.source, 0)
    known = 0 if rating.severity is Severity.UNKNOWN else 1
    return (1 if order else 0, order, rating.score or 0.0, rating.severity.rank + known)


_SEVERITIES = {s.value: s for s in Severity}


def _rating_of(severity: object, score: object, vector: object, source: object) -> Rating:
    """A record's rating from its rating columns."""
    return Rating(
        severity=_SEVERITIES[str(severity)],
        score=float(score) if isinstance(score, (int, float)) else None,
        vector=_opt(vector),
        source=str(source) if source is not None else "",
    )


def _parse(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _opt(value: object) -> str | None:
    return str(value) if value is not None else None


class MergeOutcome(StrEnum):
    IMPORTED = "imported"
    """A new id."""
    UPDATED = "updated"
    """A newer `modified` replaced the stored record."""
    SKIPPED_OLDER = "skipped-older"
    """Not newer than the stored record (or its withdrawal): ignored."""
    WITHDRAWN = "withdrawn"
    """A withdrawn record: not stored, and any stored version of it removed."""


class StoreWriter:
    """Changes to a database being built; only `build()` hands one out."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.snapshot_id = ""
        """Set by `finish`: the snapshot id of the database built."""
        self._last: tuple[str, tuple[int | None, int | None]] | None = None
        self.count = int(conn.execute("SELECT count(*) FROM advisories").fetchone()[0])

    def stored_modified(self, vuln_id: str) -> int | None:
        """`modified` (µs) of the stored version or of its withdrawal, whichever is newer."""
        live, tombstone = self._stored(vuln_id)
        return max((t for t in (live, tombstone) if t is not None), default=None)

    def _stored(self, vuln_id: str) -> tuple[int | None, int | None]:
        # The importer asks just before it merges the same id: answer that twice from memory.
        if self._last is not None and self._last[0] == vuln_id:
            return self._last[1]
        rows = self._conn.execute(
            "SELECT 0, modified FROM advisories WHERE id = ?1 "
            "UNION ALL SELECT 1, modified FROM withdrawn WHERE id = ?1",
            (vuln_id,),
        ).fetchall()
        found = {int(kind): int(modified) for kind, modified in rows}
        state = (found.get(0), found.get(1))
        self._last = (vuln_id, state)
        return state

    def merge(self, adv: Advisory) -> MergeOutcome:
        """Apply one record: newer `modified` wins; a withdrawn record deletes its id."""
        modified = to_micros(adv.modified)
        live, tombstone = self._stored(adv.id)
        self._last = None
        newest = max((t for t in (live, tombstone) if t is not None), default=None)
        if newest is not None and newest >= modified:
            return MergeOutcome.SKIPPED_OLDER
        if live is not None:
            self._delete(adv.id)
        if adv.withdrawn is not None:
            self._conn.execute(
                "INSERT OR REPLACE INTO withdrawn (id, modified) VALUES (?, ?)", (adv.id, modified)
            )
            return MergeOutcome.WITHDRAWN
        if tombstone is not None:
            self._conn.execute("DELETE FROM withdrawn WHERE id = ?", (adv.id,))
        self._insert(adv, modified)
        return MergeOutcome.UPDATED if live is not None else MergeOutcome.IMPORTED

    def _delete(self, vuln_id: str) -> bool:
        cur = self._conn.execute("DELETE FROM advisories WHERE id = ?", (vuln_id,))
        self._conn.execute("DELETE FROM affected WHERE advisory_id = ?", (vuln_id,))
        self.count -= cur.rowcount
        return cur.rowcount > 0

    def _insert(self, adv: Advisory, modified: int) -> None:
        rating = adv.rating
        self._conn.execute(
            "INSERT INTO advisories (id, modified, published, source, severity, score, "
            "rating_source, vector, aliases, header, brief) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                adv.id,
                modified,
                adv.published.isoformat() if adv.published else None,
                adv.source,
                rating.severity.value if rating else None,
                rating.score if rating else None,
                rating.source if rating else None,
                rating.vector if rating else None,
                json.dumps(list(adv.aliases)),
                codec.encode_header(adv),
                codec.encode_brief(adv),
            ),
        )
        self._conn.executemany(
            "INSERT INTO affected (advisory_id, idx, ecosystem, family, name, entry, compiled) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    adv.id,
                    i,
                    a.ecosystem,
                    ecosystem_family(a.ecosystem),
                    normalize_name(a.ecosystem, a.name),
                    codec.encode_affected(a),
                    compile_entry(adv.id, i, a),
                )
                for i, a in enumerate(adv.affected)
            ],
        )
        self.count += 1

    def record_source(
        self,
        name: str,
        *,
        url: str | None,
        now: datetime,
        etag: str | None = None,
        last_modified: datetime | None = None,
    ) -> None:
        """Note that a source delivered now; keeps the newest `modified` it ever delivered."""
        rows = self._conn.execute(
            "SELECT last_modified FROM sources WHERE name = ?", (name,)
        ).fetchall()
        previous = _parse(rows[0][0]) if rows else None
        newest = max((t for t in (previous, last_modified) if t is not None), default=None)
        self._conn.execute(
            "INSERT OR REPLACE INTO sources (name, url, etag, last_update, last_modified) "
            "VALUES (?, ?, ?, ?, ?)",
            (name, url, etag, now.isoformat(), newest.isoformat() if newest else None),
        )

    def finish(self, now: datetime) -> str:
        """Recompute alias groups and the snapshot id; returns the snapshot id."""
        conn = self._conn
        records = [
            (str(i), json.loads(a)) for i, a in conn.execute("SELECT id, aliases FROM advisories")
        ]
        groups = compute_groups(records)
        conn.execute("DELETE FROM aliases")
        conn.executemany("INSERT INTO aliases (member, group_id) VALUES (?, ?)", groups.items())
        conn.execute(
            "UPDATE advisories SET group_id = (SELECT group_id FROM aliases WHERE member = id)"
        )
        _store_groups(conn, groups)
        for statement in _LOOKUP_INDEXES:
            conn.execute(statement)
        digest = hashlib.sha256()
        for vid, modified in conn.execute("SELECT id, modified FROM advisories ORDER BY id"):
            digest.update(f"{vid}\t{modified}\n".encode())
        snapshot = digest.hexdigest()
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("snapshot_id", snapshot), ("built_at", now.isoformat())],
        )
        self.snapshot_id = snapshot
        return snapshot


def _store_groups(conn: sqlite3.Connection, groups: dict[str, str]) -> None:
    """Fill `groups`: each alias group's members and the best rating of its stored records
    (as `rating_for_group` picks it: ties go to the first record in (group, rowid) order)."""
    members: dict[str, list[str]] = {}
    for member, group in groups.items():
        members.setdefault(group, []).append(member)
    best: dict[str, Rating] = {}
    for group, severity, score, vector, source in conn.execute(
        "SELECT group_id, severity, score, vector, rating_source FROM advisories "
        "WHERE group_id IS NOT NULL AND severity IS NOT NULL ORDER BY group_id, rowid"
    ):
        rating = _rating_of(severity, score, vector, source)
        held = best.get(str(group))
        if held is None or _rating_preference(rating) > _rating_preference(held):
            best[str(group)] = rating
    conn.execute("DELETE FROM groups")
    conn.executemany(
        "INSERT INTO groups (group_id, members, rating) VALUES (?, ?, ?)",
        ((g, *codec.encode_group(m, best.get(g))) for g, m in members.items()),
    )


@contextlib.contextmanager
def build(store_path: Path, *, now: datetime) -> Iterator[StoreWriter]:
    """Change the database at `store_path` atomically.

    Yields a writer on a private copy; on normal exit the copy is finished, verified
    (integrity_check, the advisory count the writer expects) and moved over the live file. On
    an exception the copy is deleted and the live database is untouched. Builds of one database
    are serialised by a lock file next to it.
    """
    store_path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(store_path):
        tmp = store_path.with_name(f".{store_path.name}.build-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            conn = _start_copy(store_path, tmp)
            try:
                conn.execute("BEGIN")
                writer = StoreWriter(conn)
                yield writer
                writer.finish(now)
                conn.execute("COMMIT")
                _verify(conn, tmp, writer.count)
            finally:
                conn.close()
            _fsync(tmp)
            os.replace(tmp, store_path)
            _fsync(store_path.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _start_copy(store_path: Path, tmp: Path) -> sqlite3.Connection:
    """A private copy of the live database to build on; empty when there is none to keep.

    A Tidegate database of another schema version is rebuilt from empty (its records cannot be
    carried over, and `db update` must be able to replace it). Any other file is refused: the
    path may point at something that is not ours to overwrite.
    """
    keep = store_path.exists() and _is_current(store_path)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        if keep:
            src = sqlite3.connect(f"file:{quote(str(store_path.resolve()))}?mode=ro", uri=True)
            try:
                src.backup(conn)
            finally:
                src.close()
        else:
            conn.executescript(_SCHEMA)
            conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        # The copy is private until verified, so it needs no crash safety of its own.
        conn.execute("PRAGMA journal_mode = MEMORY")
        conn.execute("PRAGMA synchronous = OFF")
        return conn
    except sqlite3.DatabaseError as exc:
        raise VulnDBError(f"{store_path}: cannot copy the database to build on ({exc})") from exc


def _is_current(store_path: Path) -> bool:
    try:
        VulnStore.open(store_path).close()
        return True
    except VulnDBError as exc:
        try:
            conn = sqlite3.connect(f"file:{quote(str(store_path.resolve()))}?mode=ro", uri=True)
            try:
                conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            raise VulnDBError(f"{store_path}: exists and is not a vulnerability database") from exc
        return False


def _verify(conn: sqlite3.Connection, tmp: Path, expected: int) -> None:
    check = conn.execute("PRAGMA integrity_check").fetchall()
    if check != [("ok",)]:
        raise VulnDBError(f"{tmp}: built database fails integrity_check: {check[:3]}")
    count = int(conn.execute("SELECT count(*) FROM advisories").fetchone()[0])
    if count != expected:
        raise VulnDBError(f"{tmp}: built database holds {count} advisories, expected {expected}")
    orphans = conn.execute(
        "SELECT count(*) FROM affected WHERE advisory_id NOT IN (SELECT id FROM advisories)"
    ).fetchone()[0]
    if orphans:
        raise VulnDBError(f"{tmp}: built database has {orphans} affected rows without a record")


@contextlib.contextmanager
def _locked(store_path: Path) -> Iterator[None]:
    lock_path = store_path.with_name(store_path.name + ".lock")
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
