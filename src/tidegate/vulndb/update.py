"""`tidegate db update`: osv.dev's per-ecosystem `all.zip` archives into the local database.

Owns downloading (resumable, conditional), verifying and importing the archives:

- each archive is fetched into `<downloads>/<Ecosystem>.zip.part` next to the database; an
  interrupted download keeps its `.part` and the response's ETag, and the next run resumes it with
  `Range` + `If-Range` (a server whose archive changed meanwhile answers 200 and it restarts);
- an archive whose ETag equals the one recorded at the last update is not downloaded again
  (`If-None-Match` -> 304);
- every archive is CRC-tested before the database is touched; then all of them are merged in ONE
  database build (store.build): records not newer than the stored ones are skipped before they
  are parsed; the new file replaces the live one only when everything succeeded. A corrupt archive
  is a FeedError and the previous database stays in service, unchanged.

Records that disappear from a feed without being withdrawn stay in the database; OSV feeds
withdraw rather than delete, so this is what their publishers intend.
"""

from __future__ import annotations

import contextlib
import json
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from tidegate.core.errors import FeedError, VulnDBError
from tidegate.vulndb.importer import ImportReport, Tally, merge_documents, zip_documents
from tidegate.vulndb.paths import download_dir
from tidegate.vulndb.progress import NullProgress, Progress
from tidegate.vulndb.store import VulnStore, build

if TYPE_CHECKING:
    import httpx

OSV_BASE_URL = "https://osv-vulnerabilities.storage.googleapis.com"
DEFAULT_ECOSYSTEMS: tuple[str, ...] = (
    "Debian",
    "Alpine",
    "Ubuntu",
    "Red Hat",
    "AlmaLinux",
    "Rocky Linux",
    "PyPI",
    "npm",
    "Go",
    "Maven",
    "crates.io",
)
"""The ecosystems of the packages Tidegate catalogues (OS: dpkg, apk, rpm; languages)."""

_DOCUMENT_SUFFIXES = (".json", ".yaml", ".yml")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True, slots=True)
class EcosystemUpdate:
    ecosystem: str
    source: str
    """The source name in the database ("osv.dev:PyPI")."""
    url: str
    not_modified: bool
    """The server's archive has the ETag recorded at the last update: nothing downloaded."""
    downloaded_bytes: int
    """Bytes received in this run."""
    resumed_from: int
    """Bytes kept from an earlier interrupted download (0: started from scratch)."""


@dataclass(frozen=True, slots=True)
class UpdateReport:
    ecosystems: tuple[EcosystemUpdate, ...]
    imported: ImportReport


@dataclass(frozen=True, slots=True)
class _Fetched:
    update: EcosystemUpdate
    archive: Path | None
    etag: str | None


def source_name(ecosystem: str) -> str:
    return f"osv.dev:{ecosystem}"


def update(
    store_path: Path,
    ecosystems: Sequence[str] = DEFAULT_ECOSYSTEMS,
    *,
    base_url: str = OSV_BASE_URL,
    client: httpx.Client | None = None,
    progress: Progress | None = None,
    strict: bool = False,
    now: datetime | None = None,
) -> UpdateReport:
    """Bring the database at `store_path` up to date with the archives of `ecosystems`."""
    progress = progress or NullProgress()
    now = now or datetime.now(UTC)
    downloads = download_dir(store_path)
    downloads.mkdir(parents=True, exist_ok=True)
    with _client(client) as http:
        fetched = [
            _fetch(http, eco, _archive_url(base_url, eco), downloads, store_path, progress)
            for eco in ecosystems
        ]
    for item in fetched:
        if item.archive is not None:
            verify_archive(item.archive)
    tally = _import(store_path, fetched, strict, progress, now)
    for item in fetched:
        if item.archive is not None:
            item.archive.unlink(missing_ok=True)
    return UpdateReport(tuple(f.update for f in fetched), tally)


def _import(
    store_path: Path, fetched: Sequence[_Fetched], strict: bool, progress: Progress, now: datetime
) -> ImportReport:
    total = Tally()
    with build(store_path, now=now) as writer:
        for item in fetched:
            eco = item.update
            part = Tally()
            if item.archive is not None:
                task = f"import {eco.ecosystem}"
                progress.start(task, _document_count(item.archive))
                try:
                    docs = zip_documents(item.archive)
                    merge_documents(writer, docs, eco.source, part, strict, progress, task)
                finally:
                    progress.done(task)
            writer.record_source(
                eco.source, url=eco.url, now=now, etag=item.etag, last_modified=part.newest
            )
            total.read += part.read
            for outcome, n in part.outcomes.items():
                total.outcomes[outcome] = total.outcomes.get(outcome, 0) + n
            total.errors.extend(part.errors)
    return total.report(writer.snapshot_id)


def _document_count(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(1 for name in archive.namelist() if name.lower().endswith(_DOCUMENT_SUFFIXES))


def verify_archive(path: Path) -> None:
    """CRC-test every member; FeedError (and the archive deleted) when it is corrupt."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        path.unlink(missing_ok=True)
        raise FeedError(f"{path}: corrupt zip archive ({exc}); database left unchanged") from exc
    if bad is not None:
        path.unlink(missing_ok=True)
        raise FeedError(f"{path}: member {bad!r} fails its CRC check; database left unchanged")


@contextlib.contextmanager
def _client(client: httpx.Client | None) -> Iterator[httpx.Client]:
    if client is not None:
        yield client
        return
    import httpx  # here: reading the store (a scan) must not load an HTTP client

    with httpx.Client(timeout=httpx.Timeout(60.0, connect=15.0), follow_redirects=True) as own:
        yield own


def _archive_url(base_url: str, ecosystem: str) -> str:
    return f"{base_url.rstrip('/')}/{quote(ecosystem)}/all.zip"


def _fetch(
    http: httpx.Client,
    ecosystem: str,
    url: str,
    downloads: Path,
    store_path: Path,
    progress: Progress,
) -> _Fetched:
    """Download one archive (resuming a `.part`); archive None when the server says 304."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", ecosystem)
    part = downloads / f"{stem}.zip.part"
    meta = downloads / f"{stem}.zip.part.json"
    final = downloads / f"{stem}.zip"
    final.unlink(missing_ok=True)
    part_etag = _read_part_etag(meta, url) if part.exists() else None
    if part_etag is None:
        part.unlink(missing_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    # Ranges count bytes of the stored entity: ask for it unencoded so offsets mean file offsets.
    headers = {"Accept-Encoding": "identity"}
    if offset and part_etag:
        headers |= {"Range": f"bytes={offset}-", "If-Range": part_etag}
    else:
        known_etag = _stored_etag(store_path, source_name(ecosystem))
        if known_etag:
            headers["If-None-Match"] = known_etag
    task = f"download {ecosystem}"
    import httpx

    try:
        with http.stream("GET", url, headers=headers) as response:
            if response.status_code == 304:
                update = EcosystemUpdate(ecosystem, source_name(ecosystem), url, True, 0, 0)
                return _Fetched(update, None, headers.get("If-None-Match"))
            start, total = _body_start(response, url, offset)
            etag = response.headers.get("ETag")
            meta.write_text(json.dumps({"url": url, "etag": etag}))
            received = _receive(response, part, start, total, progress, task)
    except httpx.TransportError as exc:
        raise VulnDBError(
            f"{url}: download interrupted ({exc.__class__.__name__}: {exc}); "
            f"{part.stat().st_size if part.exists() else 0} bytes kept in {part}, "
            "run the update again to resume"
        ) from exc
    part.replace(final)
    meta.unlink(missing_ok=True)
    update = EcosystemUpdate(ecosystem, source_name(ecosystem), url, False, received, start)
    return _Fetched(update, final, etag)


def _body_start(response: httpx.Response, url: str, offset: int) -> tuple[int, int | None]:
    """Where the body goes in the `.part` file, and the archive's full size when known."""
    if response.status_code == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != offset:
            raise VulnDBError(f"{url}: server answered a resume with an unusable Content-Range")
        size = match.group(3)
        return offset, None if size == "*" else int(size)
    if response.status_code != 200:
        raise VulnDBError(f"{url}: server answered HTTP {response.status_code}")
    length = response.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None


def _receive(
    response: httpx.Response,
    part: Path,
    start: int,
    total: int | None,
    progress: Progress,
    task: str,
) -> int:
    received = 0
    progress.start(task, total)
    try:
        progress.advance(task, start)
        with part.open("r+b" if start else "wb") as handle:
            handle.seek(start)
            handle.truncate()
            # No chunk size: httpx would hold back up to a chunk, lost if the connection drops.
            for chunk in response.iter_bytes():
                handle.write(chunk)
                received += len(chunk)
                progress.advance(task, len(chunk))
    finally:
        progress.done(task)
    if total is not None and start + received != total:
        import httpx

        raise httpx.ReadError(f"body ended after {start + received} of {total} bytes")
    return received


def _read_part_etag(meta: Path, url: str) -> str | None:
    """The ETag of the interrupted download, if its sidecar is intact and for this URL."""
    try:
        doc = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("url") != url:
        return None
    etag = doc.get("etag")
    return etag if isinstance(etag, str) and etag else None


def _stored_etag(store_path: Path, source: str) -> str | None:
    if not store_path.exists():
        return None
    try:
        with VulnStore.open(store_path) as store:
            return store.source_state(source)[0]
    except VulnDBError:
        return None  # an unreadable database is rebuilt from full archives
