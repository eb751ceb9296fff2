"""`tidegate db import`: OSV records from files, directories and zip archives into the database.

Owns finding documents under the given paths (`.json`, `.yaml`, `.yml`, recursively in
directories, and the members of `.zip` archives such as osv.dev's `all.zip`), reading them with
size caps (a zip's declared sizes are not trusted: every member is read through a bounded read),
and merging their records into a database build (store.build): newer `modified` wins, withdrawn
records are removed. A bad record is reported (file, record, problem) and the import goes on,
unless `strict`; then the first problem aborts and the database stays as it was.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tidegate.core.errors import FeedError, VulnDBError
from tidegate.vulndb import osv
from tidegate.vulndb.progress import NullProgress, Progress
from tidegate.vulndb.store import MergeOutcome, StoreWriter, build, to_micros

MAX_FILE_BYTES = 512 * 1024 * 1024
"""Largest single JSON/YAML document read (bulk `{"vulns": [...]}` files run large)."""
MAX_MEMBER_BYTES = 64 * 1024 * 1024
"""Largest zip member read; one OSV record is a few kB, the biggest real ones a few MB."""
MAX_ARCHIVE_BYTES = 16 * 1024 * 1024 * 1024
"""Most uncompressed bytes read from one archive: the bound on a decompression bomb."""
MAX_MEMBERS = 5_000_000

_SUFFIXES = {".json": False, ".yaml": True, ".yml": True}


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """One record or document that could not be imported."""

    where: str
    """The file, or "archive.zip!member.json"."""
    record: str | None
    """The record id when it could be read."""
    problem: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    read: int
    """Records read (parsed or not)."""
    imported: int
    """New ids stored."""
    updated: int
    """Stored ids replaced by a newer `modified`."""
    skipped_older: int
    """Records not newer than what the database holds."""
    withdrawn: int
    """Withdrawn records: dropped, and any stored version removed."""
    errors: tuple[ImportProblem, ...]
    snapshot_id: str
    """Snapshot id of the database after the import."""


@dataclass(slots=True)
class Tally:
    """Counts of one build, shared by every source merged into it."""

    read: int = 0
    outcomes: dict[MergeOutcome, int] = field(default_factory=dict)
    errors: list[ImportProblem] = field(default_factory=list)
    newest: datetime | None = None

    def report(self, snapshot_id: str) -> ImportReport:
        return ImportReport(
            read=self.read,
            imported=self.outcomes.get(MergeOutcome.IMPORTED, 0),
            updated=self.outcomes.get(MergeOutcome.UPDATED, 0),
            skipped_older=self.outcomes.get(MergeOutcome.SKIPPED_OLDER, 0),
            withdrawn=self.outcomes.get(MergeOutcome.WITHDRAWN, 0),
            errors=tuple(self.errors),
            snapshot_id=snapshot_id,
        )


def import_paths(
    store_path: Path,
    paths: Sequence[Path],
    *,
    progress: Progress | None = None,
    strict: bool = False,
    now: datetime | None = None,
) -> ImportReport:
    """Import every record found under `paths` into the database at `store_path` (created if
    missing). The database is replaced only when the whole import succeeded."""
    progress = progress or NullProgress()
    now = now or datetime.now(UTC)
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise VulnDBError(f"{missing[0]}: no such file or directory")
    tally = Tally()
    with build(store_path, now=now) as writer:
        for path in paths:
            source = f"import:{path.resolve()}"
            task = f"import {path.name or path}"
            progress.start(task, None)
            source_tally = Tally()
            try:
                merge_documents(
                    writer, documents(path), source, source_tally, strict, progress, task
                )
            finally:
                progress.done(task)
            writer.record_source(
                source, url=path.resolve().as_uri(), now=now, last_modified=source_tally.newest
            )
            _add(tally, source_tally)
    return tally.report(writer.snapshot_id)


def _add(total: Tally, part: Tally) -> None:
    total.read += part.read
    for outcome, n in part.outcomes.items():
        total.outcomes[outcome] = total.outcomes.get(outcome, 0) + n
    total.errors.extend(part.errors)


Document = tuple[str, "bytes | FeedError", "bool | None"]
"""(where, content or the error reading it, YAML?)"""


def documents(path: Path) -> Iterator[Document]:
    """Every document under `path`: the file itself, files in a directory, members of a zip."""
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            suffix = child.suffix.lower()
            if child.is_file() and not child.is_symlink() and suffix in {*_SUFFIXES, ".zip"}:
                yield from _file_documents(child)
    else:
        yield from _file_documents(path)


def _file_documents(path: Path) -> Iterator[Document]:
    suffix = path.suffix.lower()
    if suffix == ".zip":
        yield from zip_documents(path)
        return
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        yield str(path), FeedError(f"{path}: cannot read: {exc.strerror}"), None
        return
    if len(data) > MAX_FILE_BYTES:
        yield str(path), FeedError(f"{path}: larger than {MAX_FILE_BYTES} bytes"), None
        return
    yield str(path), data, _SUFFIXES.get(suffix)


def zip_documents(path: Path) -> Iterator[Document]:
    """The JSON/YAML members of a zip archive; FeedError when the archive itself is unreadable.

    Sizes are enforced on the bytes actually inflated, not on what the directory declares.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FeedError(f"{path}: not a readable zip archive ({exc})") from exc
    with archive:
        members = [i for i in archive.infolist() if not i.is_dir()]
        if len(members) > MAX_MEMBERS:
            raise FeedError(f"{path}: {len(members)} members (limit {MAX_MEMBERS})")
        total = 0
        for info in members:
            suffix = Path(info.filename).suffix.lower()
            if suffix not in _SUFFIXES:
                continue
            where = f"{path}!{info.filename}"
            if info.file_size > MAX_MEMBER_BYTES:
                yield where, FeedError(f"{where}: larger than {MAX_MEMBER_BYTES} bytes"), None
                continue
            try:
                with archive.open(info) as member:
                    data = member.read(MAX_MEMBER_BYTES + 1)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise FeedError(f"{where}: corrupt archive member ({exc})") from exc
            total += len(data)
            if total > MAX_ARCHIVE_BYTES:
                raise FeedError(f"{path}: inflates past {MAX_ARCHIVE_BYTES} bytes (zip bomb?)")
            if len(data) > MAX_MEMBER_BYTES:
                yield where, FeedError(f"{where}: inflates past {MAX_MEMBER_BYTES} bytes"), None
                continue
            yield where, data, _SUFFIXES[suffix]


def merge_documents(
    writer: StoreWriter,
    docs: Iterable[Document],
    source: str,
    tally: Tally,
    strict: bool,
    progress: Progress,
    task: str,
) -> None:
    """Parse and merge every record of `docs`, counting outcomes and problems in `tally`."""
    for where, data, yaml_format in docs:
        progress.advance(task, 1)
        try:
            if isinstance(data, FeedError):
                raise data
            records = osv.load_document(data, where=where, yaml_format=yaml_format)
        except FeedError as exc:
            _problem(tally, strict, ImportProblem(where, None, str(exc)), exc)
            continue
        for raw in records:
            tally.read += 1
            _merge_one(writer, raw, where, source, tally, strict)


def _merge_one(
    writer: StoreWriter, raw: object, where: str, source: str, tally: Tally, strict: bool
) -> None:
    key = osv.record_key(raw)
    if key is not None:
        modified = osv.parse_timestamp(key[1])
        stored = writer.stored_modified(key[0])
        # Not newer than what we hold: skip before paying for the full parse and CVSS scoring.
        if modified is not None and stored is not None and stored >= to_micros(modified):
            _count(tally, MergeOutcome.SKIPPED_OLDER, modified)
            return
    try:
        adv = osv.parse_record(raw, where=where, source=source)
    except FeedError as exc:
        _problem(tally, strict, ImportProblem(where, osv.record_id(raw), str(exc)), exc)
        return
    _count(tally, writer.merge(adv), adv.modified)


def _count(tally: Tally, outcome: MergeOutcome, modified: datetime) -> None:
    tally.outcomes[outcome] = tally.outcomes.get(outcome, 0) + 1
    if tally.newest is None or modified > tally.newest:
        tally.newest = modified


def _problem(tally: Tally, strict: bool, problem: ImportProblem, exc: FeedError) -> None:
    if strict:
        raise exc
    tally.errors.append(problem)
