"""`db update` against a local HTTP server serving osv.dev-style `all.zip` archives."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from vulndb_helpers import NOW

from tidegate.core.errors import FeedError, VulnDBError
from tidegate.vulndb.paths import download_dir
from tidegate.vulndb.store import VulnStore
from tidegate.vulndb.update import update


def osv(vid: str, modified: str, ecosystem: str, name: str, fixed: str) -> dict[str, object]:
    return {
        "schema_version": "1.6.0",
        "id": vid,
        "modified": modified,
        "aliases": [f"CVE-2099-{vid[-4:]}"],
        "details": "x" * 200,  # bulk, so that an interrupted transfer stops mid-archive
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
    }


def archive(records: list[dict[str, object]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for rec in records:
            zf.writestr(f"{rec['id']}.json", json.dumps(rec))
    return buf.getvalue()


def pypi_records(
    count: int = 60, modified: str = "2024-01-01T00:00:00Z"
) -> list[dict[str, object]]:
    return [osv(f"PYSEC-2099-{i:04d}", modified, "PyPI", f"pkg{i}", "1.0") for i in range(count)]


@dataclass
class FeedServer:
    """osv.dev's bucket in miniature: ETag, If-None-Match, Range/If-Range, and a cut cable."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    cut_after: dict[str, int] = field(default_factory=dict)
    url: str = ""

    def etag(self, path: str) -> str:
        return '"' + hashlib.md5(self.files[path]).hexdigest() + '"'


def make_handler(feed: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            feed.requests.append((self.path, dict(self.headers.items())))
            data = feed.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            etag = feed.etag(self.path)
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes=") and self.headers.get("If-Range", etag) == etag:
                start = int(rng[6:].rstrip("-"))
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            body = data[start:]
            cut = feed.cut_after.pop(self.path, None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    state = FeedServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as http:
        yield http


class Recorder:
    def __init__(self) -> None:
        self.totals: dict[str, int | None] = {}
        self.advanced: dict[str, int] = {}
        self.finished: list[str] = []

    def start(self, task: str, total: int | None) -> None:
        self.totals[task] = total
        self.advanced.setdefault(task, 0)

    def advance(self, task: str, n: int = 1) -> None:
        self.advanced[task] += n

    def done(self, task: str) -> None:
        self.finished.append(task)


NPM = [osv("GHSA-tg00-9999-0001", "2024-02-01T00:00:00Z", "npm", "left-pad", "1.3.0")]


def test_full_then_not_modified_then_incremental(
    feed: FeedServer, client: httpx.Client, db_path: Path
) -> None:
    feed.files = {"/PyPI/all.zip": archive(pypi_records()), "/npm/all.zip": archive(NPM)}
    progress = Recorder()
    first = update(
        db_path, ["PyPI", "npm"], base_url=feed.url, client=client, progress=progress, now=NOW
    )
    assert (first.imported.imported, first.imported.errors) == (61, ())
    size = len(feed.files["/PyPI/all.zip"])
    assert progress.totals["download PyPI"] == size
    assert progress.advanced["download PyPI"] == size
    assert progress.totals["import PyPI"] == 60
    assert set(progress.finished) == set(progress.totals)
    with VulnStore.open(db_path) as store:
        assert [a.id for a, _ in store.advisories_for("PyPI", "PKG7")] == ["PYSEC-2099-0007"]
        sources = {s.name: s for s in store.status().sources}
        assert sources["osv.dev:PyPI"].count == 60
        assert sources["osv.dev:PyPI"].url == f"{feed.url}/PyPI/all.zip"
        snapshot = store.snapshot_id()
    assert list(download_dir(db_path).iterdir()) == []

    second = update(db_path, ["PyPI", "npm"], base_url=feed.url, client=client, now=NOW)
    assert [e.not_modified for e in second.ecosystems] == [True, True]
    assert feed.requests[-1][1]["If-None-Match"] == feed.etag("/npm/all.zip")
    assert second.imported.snapshot_id == snapshot

    changed = pypi_records()
    changed[3] = osv("PYSEC-2099-0003", "2024-06-01T00:00:00Z", "PyPI", "pkg3", "2.0")
    changed.append(osv("PYSEC-2099-0100", "2024-06-01T00:00:00Z", "PyPI", "new", "1.0"))
    feed.files["/PyPI/all.zip"] = archive(changed)
    third = update(db_path, ["PyPI", "npm"], base_url=feed.url, client=client, now=NOW)
    report = third.imported
    assert (report.imported, report.updated, report.skipped_older) == (1, 1, 59)
    assert [e.not_modified for e in third.ecosystems] == [False, True]
    with VulnStore.open(db_path) as store:
        ((_, entry),) = store.advisories_for("PyPI", "pkg3")
        assert entry.ranges[0].events[1].version == "2.0"
        assert store.snapshot_id() not in (snapshot, "")
        assert store.status().advisories == 62


def test_interrupted_download_resumes_with_range(
    feed: FeedServer, client: httpx.Client, db_path: Path
) -> None:
    feed.files = {"/npm/all.zip": archive(NPM)}
    before = update(db_path, ["npm"], base_url=feed.url, client=client, now=NOW)
    data = archive(pypi_records(200))
    feed.files["/PyPI/all.zip"] = data
    feed.cut_after["/PyPI/all.zip"] = 10_000
    live = db_path.read_bytes()

    with pytest.raises(VulnDBError, match=r"PyPI/all.zip: download interrupted .* resume"):
        update(db_path, ["npm", "PyPI"], base_url=feed.url, client=client, now=NOW)
    part = download_dir(db_path) / "PyPI.zip.part"
    assert part.stat().st_size == 10_000
    assert db_path.read_bytes() == live  # the previous database stays in service, unchanged

    again = update(db_path, ["npm", "PyPI"], base_url=feed.url, client=client, now=NOW)
    path, headers = feed.requests[-1]
    assert path == "/PyPI/all.zip"
    assert headers["Range"] == "bytes=10000-"
    assert headers["If-Range"] == feed.etag("/PyPI/all.zip")
    pypi = again.ecosystems[1]
    assert (pypi.resumed_from, pypi.downloaded_bytes) == (10_000, len(data) - 10_000)
    assert again.imported.imported == 200
    assert again.imported.snapshot_id != before.imported.snapshot_id
    assert list(download_dir(db_path).iterdir()) == []


def test_resume_restarts_when_the_archive_changed(
    feed: FeedServer, client: httpx.Client, db_path: Path
) -> None:
    feed.files = {"/PyPI/all.zip": archive(pypi_records(200))}
    feed.cut_after["/PyPI/all.zip"] = 5_000
    with pytest.raises(VulnDBError, match="interrupted"):
        update(db_path, ["PyPI"], base_url=feed.url, client=client, now=NOW)
    assert not db_path.exists()
    newer = archive(pypi_records(200, modified="2024-09-09T00:00:00Z"))
    feed.files["/PyPI/all.zip"] = newer
    result = update(db_path, ["PyPI"], base_url=feed.url, client=client, now=NOW)
    assert feed.requests[-1][1]["Range"] == "bytes=5000-"  # asked to resume; server said 200
    assert (result.ecosystems[0].resumed_from, result.ecosystems[0].downloaded_bytes) == (
        0,
        len(newer),
    )
    with VulnStore.open(db_path) as store:
        adv = store.advisory("PYSEC-2099-0001")
        assert adv is not None
        assert adv.modified.month == 9


def corrupt(data: bytes) -> bytes:
    """Flip one byte inside the first member's data: the zip still opens, its CRC fails."""
    damaged = bytearray(data)
    offset = data.index(b'"details"') + 20
    damaged[offset] ^= 0x01
    return bytes(damaged)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(lambda: corrupt(archive(pypi_records())), "fails its CRC check", id="crc"),
        pytest.param(lambda: b"<html>503 Slow Down</html>", "corrupt zip archive", id="not-zip"),
        pytest.param(lambda: archive(pypi_records())[:-30], "corrupt zip archive", id="truncated"),
    ],
)
def test_corrupt_archive_keeps_the_previous_database(
    feed: FeedServer, client: httpx.Client, db_path: Path, payload: object, message: str
) -> None:
    feed.files = {"/npm/all.zip": archive(NPM)}
    first = update(db_path, ["npm"], base_url=feed.url, client=client, now=NOW)
    live = db_path.read_bytes()
    assert callable(payload)
    feed.files["/PyPI/all.zip"] = payload()
    with pytest.raises(FeedError, match=message):
        update(db_path, ["npm", "PyPI"], base_url=feed.url, client=client, now=NOW)
    assert db_path.read_bytes() == live
    with VulnStore.open(db_path) as store:
        assert store.snapshot_id() == first.imported.snapshot_id
    assert list(download_dir(db_path).iterdir()) == []  # the bad archive is not kept


def test_http_error_keeps_the_previous_database(
    feed: FeedServer, client: httpx.Client, db_path: Path
) -> None:
    feed.files = {"/npm/all.zip": archive(NPM)}
    update(db_path, ["npm"], base_url=feed.url, client=client, now=NOW)
    live = db_path.read_bytes()
    with pytest.raises(VulnDBError, match=r"Rocky%20Linux/all.zip: server answered HTTP 404"):
        update(db_path, ["npm", "Rocky Linux"], base_url=feed.url, client=client, now=NOW)
    assert db_path.read_bytes() == live


def test_bad_records_in_an_archive_are_reported(
    feed: FeedServer, client: httpx.Client, db_path: Path
) -> None:
    records: list[dict[str, object]] = [*NPM, {"id": "GHSA-bad", "modified": 12}]
    feed.files = {"/npm/all.zip": archive(records)}
    result = update(db_path, ["npm"], base_url=feed.url, client=client, now=NOW)
    (problem,) = result.imported.errors
    assert problem.where.endswith("npm.zip!GHSA-bad.json")
    assert problem.record == "GHSA-bad"
    assert "field 'modified'" in problem.problem
    strict_db = db_path.with_name("strict.sqlite")
    with pytest.raises(FeedError, match="GHSA-bad"):
        update(strict_db, ["npm"], base_url=feed.url, client=client, strict=True, now=NOW)
    assert not strict_db.exists()
