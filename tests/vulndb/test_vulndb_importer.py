"""`db import`: files, directories, zips; error reports; strict mode; atomic replacement."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from vulndb_helpers import FIXTURES, NOW

from tidegate.core.errors import FeedError, VulnDBError
from tidegate.vulndb import importer
from tidegate.vulndb.importer import import_paths
from tidegate.vulndb.store import VulnStore


def feed_zip(tmp_path: Path, extra: dict[str, bytes] | None = None) -> Path:
    path = tmp_path / "all.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted((FIXTURES / "feed").rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(FIXTURES / "feed").as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


class Recorder:
    """A Progress that remembers calls, and can fail at a chosen point like a killed process."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls: list[tuple[str, str, int | None]] = []
        self.fail_after = fail_after

    def start(self, task: str, total: int | None) -> None:
        self.calls.append(("start", task, total))

    def advance(self, task: str, n: int = 1) -> None:
        self.calls.append(("advance", task, n))
        advances = sum(1 for c in self.calls if c[0] == "advance")
        if self.fail_after is not None and advances > self.fail_after:
            raise KeyboardInterrupt

    def done(self, task: str) -> None:
        self.calls.append(("done", task, None))


def test_directory_import_report(db_path: Path) -> None:
    progress = Recorder()
    report = import_paths(db_path, [FIXTURES / "feed"], progress=progress, now=NOW)
    # 6 files hold 7 records (bulk-maven.json has two); README.txt is not a feed document.
    assert (report.read, report.imported, report.withdrawn, report.errors) == (7, 6, 1, ())
    assert progress.calls[0] == ("start", "import feed", None)
    assert progress.calls[-1] == ("done", "import feed", None)
    assert sum(c[2] or 0 for c in progress.calls if c[0] == "advance") == 6
    again = import_paths(db_path, [FIXTURES / "feed"], now=NOW)
    # the withdrawn record's tombstone makes it "not newer" too
    assert (again.imported, again.updated, again.skipped_older) == (0, 0, 7)


def test_zip_import(db_path: Path, tmp_path: Path) -> None:
    archive = feed_zip(tmp_path, {"notes.txt": b"ignored", "dir/": b""})
    report = import_paths(db_path, [archive], now=NOW)
    assert (report.read, report.imported, report.errors) == (7, 6, ())
    with VulnStore.open(db_path) as store:
        assert store.group_id("PYSEC-2099-1") == "CVE-2099-0001"


def test_bad_documents_are_reported_and_the_rest_imported(db_path: Path) -> None:
    report = import_paths(db_path, [FIXTURES / "bad"], now=NOW)
    assert report.imported == 1
    problems = {(Path(p.where).name, p.record): p.problem for p in report.errors}
    bad = FIXTURES / "bad"
    expected = {
        ("malformed.yaml", None): f"{bad / 'malformed.yaml'}: malformed YAML",
        ("truncated.json", None): f"{bad / 'truncated.json'}: malformed JSON",
        ("wrong-types.json", "BAD-3"): "field 'affected' must be a list",
        ("wrong-types.json", None): "",
        ("wrong-types.json", "BAD-4"): "field 'modified' is missing",
        ("wrong-types.json", "BAD-5"): "field 'modified' is not an RFC 3339 timestamp",
    }
    assert set(problems) == set(expected)
    for key, text in expected.items():
        assert text in problems[key]
    assert len(report.errors) == 8  # three record-less problems in wrong-types.json
    with VulnStore.open(db_path) as store:
        assert [a.id for a, _ in store.advisories_for("PyPI", "fine")] == ["GOOD-1"]


def test_strict_aborts_and_keeps_the_previous_database(db_path: Path) -> None:
    import_paths(db_path, [FIXTURES / "feed"], now=NOW)
    before = db_path.read_bytes()
    with pytest.raises(FeedError, match="malformed"):
        import_paths(db_path, [FIXTURES / "bad"], strict=True, now=NOW)
    assert db_path.read_bytes() == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == [
        db_path.name,
        db_path.name + ".lock",
    ]


def test_interrupted_import_leaves_previous_database_in_service(db_path: Path) -> None:
    first = import_paths(db_path, [FIXTURES / "feed" / "nested"], now=NOW)
    with pytest.raises(KeyboardInterrupt):
        import_paths(db_path, [FIXTURES / "feed"], progress=Recorder(fail_after=3), now=NOW)
    with VulnStore.open(db_path) as store:
        assert store.snapshot_id() == first.snapshot_id
        assert store.status().advisories == 2
    assert not [p for p in db_path.parent.iterdir() if ".build-" in p.name]


def test_missing_path(db_path: Path, tmp_path: Path) -> None:
    with pytest.raises(VulnDBError, match="no such file"):
        import_paths(db_path, [tmp_path / "nowhere"], now=NOW)
    assert not db_path.exists()


def test_corrupt_zip_is_fatal(db_path: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 this is no zip")
    with pytest.raises(FeedError, match="not a readable zip archive"):
        import_paths(db_path, [broken], now=NOW)
    assert not db_path.exists()


def test_zip_member_and_archive_caps(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = b'{"id": "BIG-1", "modified": "2024-01-01T00:00:00Z", "details": "' + b" " * 200_000
    archive = feed_zip(tmp_path, {"big.json": bomb + b'"}'})
    assert archive.stat().st_size < 20_000  # 200 kB of spaces deflate to almost nothing
    monkeypatch.setattr(importer, "MAX_MEMBER_BYTES", 100_000)
    report = import_paths(db_path, [archive], now=NOW)
    (problem,) = report.errors
    assert problem.where.endswith("all.zip!big.json")
    assert "larger than 100000 bytes" in problem.problem
    assert report.imported == 6
    monkeypatch.setattr(importer, "MAX_MEMBER_BYTES", 1_000_000)
    monkeypatch.setattr(importer, "MAX_ARCHIVE_BYTES", 150_000)
    with pytest.raises(FeedError, match="zip bomb"):
        import_paths(db_path, [archive], now=NOW)


def test_lying_zip_directory_is_bounded(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member whose central directory under-declares its size still stops at the cap."""
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("x.json", b"[" + b" " * 50_000 + b"]")
    data = bytearray(archive.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")  # uncompressed size: 10
    archive.write_bytes(bytes(data))
    monkeypatch.setattr(importer, "MAX_MEMBER_BYTES", 1_000)
    with pytest.raises(FeedError, match=r"liar.zip!x.json"):
        import_paths(db_path, [archive], now=NOW)


def test_symlinks_in_directories_are_not_followed(db_path: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(FIXTURES / "feed" / "DSA-9999-1.json", tree)
    (tree / "link.json").symlink_to(FIXTURES / "feed" / "GHSA-tg00-0001-aaaa.json")
    report = import_paths(db_path, [tree], now=NOW)
    assert report.imported == 1
