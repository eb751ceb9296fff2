"""The SQLite store: lookups for the matcher, alias groups, merge rules, snapshot ids, status."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from vulndb_helpers import FIXTURES, NOW

from tidegate.core.errors import VulnDBError
from tidegate.core.models import Severity
from tidegate.vulndb.importer import import_paths
from tidegate.vulndb.store import VulnStore, ecosystem_family, normalize_name


@pytest.fixture
def store(db_path: Path) -> VulnStore:
    import_paths(db_path, [FIXTURES / "feed"], now=NOW)
    return VulnStore.open(db_path)


def write_record(path: Path, **fields: object) -> Path:
    doc = {"id": "GHSA-tg00-0005-uuuu", "modified": "2024-01-01T00:00:00Z"}
    doc.update(fields)  # type: ignore[arg-type]
    path.write_text(json.dumps(doc))
    return path


def pkg(ecosystem: str, name: str, fixed: str = "2.0") -> dict[str, object]:
    return {
        "package": {"ecosystem": ecosystem, "name": name},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
    }


@pytest.mark.parametrize(
    ("ecosystem", "name", "expected"),
    [
        ("npm", "tidegate-demo", ["GHSA-tg00-0001-aaaa"]),
        ("npm", "Tidegate-Demo", []),
        ("PyPI", "tidegate.demo", ["GHSA-tg00-0001-aaaa", "PYSEC-2099-1"]),
        ("PyPI", "TIDEGATE__DEMO", ["GHSA-tg00-0001-aaaa", "PYSEC-2099-1"]),
        ("Debian:12", "node-tidegate-demo", ["DEBIAN-CVE-2099-0001"]),
        ("Debian:11", "node-tidegate-demo", []),
        ("Debian", "openssl", ["DSA-9999-1"]),
        ("Maven", "org.example:tidegate-demo", ["GHSA-tg00-0003-mmmm"]),
        ("Alpine:v3.18", "musl", ["ALPINE-CVE-2099-0004"]),
        ("Go", "example.invalid/tidegate/demo", []),
    ],
)
def test_advisories_for(store: VulnStore, ecosystem: str, name: str, expected: list[str]) -> None:
    found = store.advisories_for(ecosystem, name)
    assert [a.id for a, _ in found] == expected
    for adv, entry in found:
        assert normalize_name(entry.ecosystem, entry.name) == normalize_name(ecosystem, name)
        assert adv.affected == ()


def test_entry_comes_back_whole(store: VulnStore) -> None:
    ((adv, entry),) = store.advisories_for("npm", "tidegate-demo")
    assert adv.rating is not None
    assert (adv.rating.severity, adv.rating.score) == (Severity.CRITICAL, 9.8)
    assert adv.aliases == ("CVE-2099-0001",)
    assert entry.purl == "pkg:npm/tidegate-demo"
    assert [(e.kind.value, e.version) for e in entry.ranges[0].events] == [
        ("introduced", "0"),
        ("fixed", "1.2.3"),
    ]
    full = store.advisory("GHSA-tg00-0001-aaaa")
    assert full is not None
    assert [a.ecosystem for a in full.affected] == ["npm", "PyPI"]
    assert full.affected[1].versions == ("1.0", "1.4")
    assert store.advisory("NOPE-1") is None


def test_alias_group(store: VulnStore) -> None:
    group = {"GHSA-tg00-0001-aaaa", "PYSEC-2099-1", "DEBIAN-CVE-2099-0001", "CVE-2099-0001"}
    for member in group:
        assert store.group_id(member) == "CVE-2099-0001"
        assert store.aliases_of(member) == group - {member}
    assert store.group_id("CVE-2099-0002") == "CVE-2099-0002"
    assert store.aliases_of("DSA-9999-1") == set()
    assert store.aliases_of("UNKNOWN-1") == set()
    assert store.group_id("UNKNOWN-1") is None


def test_rating_for_group_takes_the_alias_cvss(store: VulnStore) -> None:
    debian = store.advisory("DEBIAN-CVE-2099-0001")
    assert debian is not None
    assert debian.rating is not None
    assert (debian.rating.severity, debian.rating.source) == (Severity.LOW, "Debian urgency")
    rating = store.rating_for_group("DEBIAN-CVE-2099-0001")
    assert rating is not None
    assert (rating.severity, rating.score, rating.source) == (Severity.CRITICAL, 9.8, "CVSS_V3")
    assert rating.vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert store.rating_for_group("DSA-9999-1") is None
    v4 = store.rating_for_group("GHSA-tg00-0003-mmmm")
    assert v4 is not None
    assert (v4.source, v4.score) == ("CVSS_V4", 9.3)


def test_withdrawn_is_dropped(store: VulnStore) -> None:
    assert store.advisory("GHSA-tg00-0002-wwww") is None
    assert store.advisories_for("Go", "example.invalid/tidegate/demo") == []


def test_status(store: VulnStore, db_path: Path) -> None:
    status = store.status()
    assert status.advisories == 6
    assert dict(status.ecosystems) == {
        "Alpine": 1,
        "Debian": 2,
        "Maven": 1,
        "PyPI": 2,
        "npm": 1,
    }
    assert status.built_at == NOW
    assert status.age(NOW + timedelta(hours=2)) == timedelta(hours=2)
    (source,) = status.sources
    assert source.name == f"import:{(FIXTURES / 'feed').resolve()}"
    assert source.count == 6
    assert source.last_modified is not None
    assert source.last_modified.year == 2099
    assert len(status.snapshot_id) == 64
    assert status.snapshot_id == store.snapshot_id()
    assert "Alpine:v3.18" in store.ecosystems()


def test_merge_rules(db_path: Path, tmp_path: Path) -> None:
    """Newer modified wins; older or equal is skipped; withdrawal deletes; no resurrection."""
    rec = tmp_path / "rec.json"

    def at(day: str, fixed: str | None = None) -> dict[str, object]:
        fields: dict[str, object] = {"modified": f"{day}T00:00:00Z"}
        if fixed is None:
            fields["withdrawn"] = fields["modified"]
        else:
            fields["affected"] = [pkg("PyPI", "a", fixed)]
        return fields

    steps: list[tuple[dict[str, object], str, str | None]] = [
        (at("2024-01-01", "1.0"), "imported", "1.0"),
        (at("2023-01-01", "0.5"), "skipped_older", "1.0"),
        (at("2024-01-01", "0.7"), "skipped_older", "1.0"),
        (at("2024-02-01", "1.1"), "updated", "1.1"),
        (at("2024-03-01"), "withdrawn", None),
        (at("2024-02-15", "1.1"), "skipped_older", None),
        (at("2024-04-01", "1.2"), "imported", "1.2"),
    ]
    for fields, outcome, fixed in steps:
        report = import_paths(db_path, [write_record(rec, **fields)], now=NOW)
        assert getattr(report, outcome) == 1, (fields, report)
        with VulnStore.open(db_path) as store:
            found = store.advisories_for("PyPI", "a")
            assert [e.ranges[0].events[1].version for _, e in found] == ([fixed] if fixed else [])


def test_snapshot_id_is_content_hash(db_path: Path, tmp_path: Path) -> None:
    first = import_paths(db_path, [FIXTURES / "feed"], now=NOW).snapshot_id
    again = import_paths(db_path, [FIXTURES / "feed"], now=NOW + timedelta(days=1)).snapshot_id
    assert again == first
    other = tmp_path / "other.sqlite"
    for path in sorted((FIXTURES / "feed").rglob("*.json"), reverse=True):
        import_paths(other, [path], now=NOW)
    import_paths(other, [FIXTURES / "feed" / "nested"], now=NOW)
    with VulnStore.open(other) as store:
        assert store.snapshot_id() == first
    rec = write_record(tmp_path / "new.json", affected=[pkg("npm", "x")])
    assert import_paths(db_path, [rec], now=NOW).snapshot_id != first


@pytest.mark.parametrize(
    ("ecosystem", "name", "expected"),
    [
        ("PyPI", "Foo_Bar.baz", "foo-bar-baz"),
        ("PyPI", "foo--__bar", "foo-bar"),
        ("npm", "@Scope/Pkg", "@Scope/Pkg"),
        ("Maven", "org.Example:Art_1", "org.Example:Art_1"),
        ("Go", "github.com/Foo/bar", "github.com/Foo/bar"),
        ("Debian:12", "libssl3", "libssl3"),
    ],
)
def test_normalize_name(ecosystem: str, name: str, expected: str) -> None:
    assert normalize_name(ecosystem, name) == expected


@pytest.mark.parametrize(
    ("ecosystem", "family"),
    [("Debian:12", "Debian"), ("Alpine:v3.18", "Alpine"), ("Ubuntu:22.04:LTS", "Ubuntu"),
     ("PyPI", "PyPI")],
)  # fmt: skip
def test_ecosystem_family(ecosystem: str, family: str) -> None:
    assert ecosystem_family(ecosystem) == family


def test_open_refuses_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(VulnDBError, match="no vulnerability database"):
        VulnStore.open(tmp_path / "absent.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(VulnDBError, match="not a Tidegate vulnerability database"):
        VulnStore.open(junk)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).executescript(
        "CREATE TABLE meta (key TEXT, value TEXT); INSERT INTO meta VALUES ('schema_version', '0');"
    )
    with pytest.raises(VulnDBError, match="database schema 0"):
        VulnStore.open(other)


def test_readonly_store_refuses_writes(store: VulnStore) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store._conn.execute("DELETE FROM advisories")


def test_build_replaces_an_outdated_database_and_refuses_a_foreign_file(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as conn:
        conn.executescript(
            "CREATE TABLE meta (key TEXT, value TEXT);"
            "INSERT INTO meta VALUES ('schema_version', '0');"
        )
    conn.close()
    report = import_paths(old, [FIXTURES / "feed" / "DSA-9999-1.json"], now=NOW)
    assert report.imported == 1
    with VulnStore.open(old) as store:
        assert store.status().advisories == 1
    foreign = tmp_path / "notes.txt"
    foreign.write_text("my notes")
    with pytest.raises(VulnDBError, match="is not a vulnerability database"):
        import_paths(foreign, [FIXTURES / "feed"], now=NOW)
    assert foreign.read_text() == "my notes"


LOOKUPS = [
    ("npm", "tidegate-demo"),
    ("PyPI", "tidegate.demo"),
    ("Debian:12", "node-tidegate-demo"),
    ("Debian", "openssl"),
    ("Maven", "org.example:tidegate-demo"),
    ("Alpine:v3.18", "musl"),
    ("Go", "example.invalid/tidegate/demo"),
]


def _indexes(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    finally:
        conn.close()


def test_a_build_makes_the_covering_lookup_indexes(store: VulnStore, db_path: Path) -> None:
    names = _indexes(db_path)
    assert {"affected_ecosystem_lookup", "affected_family_lookup"} <= names
    assert {"affected_ecosystem_name", "affected_family_name"} <= names
    conn = sqlite3.connect(db_path)
    try:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT name, group_concat(compiled) FROM affected "
            "WHERE ecosystem = ? AND name IN (?, ?) GROUP BY name",
            ("Debian:12", "a", "b"),
        ).fetchall()
    finally:
        conn.close()
    assert "COVERING INDEX affected_ecosystem_lookup" in str(plan)


def test_a_database_of_the_older_layout_reads_the_same_and_gets_them_at_its_next_build(
    store: VulnStore, db_path: Path, tmp_path: Path
) -> None:
    want = store.compiled_for_many(LOOKUPS)
    store.close()
    conn = sqlite3.connect(db_path)
    conn.executescript("DROP INDEX affected_ecosystem_lookup; DROP INDEX affected_family_lookup;")
    conn.close()
    with VulnStore.open(db_path) as older:
        assert older.compiled_for_many(LOOKUPS) == want
    record = write_record(tmp_path / "new.json", affected=[pkg("npm", "another-package")])
    import_paths(db_path, [record], now=NOW + timedelta(days=1))
    assert {"affected_ecosystem_lookup", "affected_family_lookup"} <= _indexes(db_path)
    with VulnStore.open(db_path) as rebuilt:
        assert rebuilt.compiled_for_many(LOOKUPS) == want
