"""Import of the real OSV records in ../shared/vulndata, and facts about specific records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from vulndb_helpers import NOW

from tidegate.core.models import Severity
from tidegate.vulndb.importer import import_paths
from tidegate.vulndb.osv import load_document, parse_record
from tidegate.vulndb.store import VulnStore


@pytest.fixture(scope="module")
def real_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vulndb_helpers import VULNDATA

    if not (VULNDATA / "osv").is_dir():
        pytest.skip(f"shared vulnerability data not present at {VULNDATA}")
    data = VULNDATA.resolve()
    db = tmp_path_factory.mktemp("real") / "vulndb.sqlite"
    report = import_paths(
        db,
        [
            data / "osv",
            data / "derived" / "osv",
            data / "derived" / "osv-json-from-pypa-yaml",
            data / "raw-bulk",
        ],
        now=NOW,
    )
    assert report.errors == ()
    # the derived PyPI JSON repeats the upstream YAML records with the same `modified`
    assert report.skipped_older == len(
        list((data / "derived/osv-json-from-pypa-yaml").rglob("*.json"))
    )
    return db


@pytest.fixture
def store(real_db: Path) -> VulnStore:
    return VulnStore.open(real_db)


def test_counts(store: VulnStore, vulndata: Path) -> None:
    status = store.status()
    families = dict(status.ecosystems)
    assert families["Go"] >= len(list((vulndata / "osv/Go").glob("*.json")))
    assert families["PyPI"] >= len(list((vulndata / "osv/PyPI").glob("*.yaml")))
    bulk = next(s for s in status.sources if s.name.endswith("raw-bulk"))
    assert bulk.count == 356


def test_alias_group_cve_ghsa_pysec(store: VulnStore) -> None:
    assert store.group_id("PYSEC-2021-108") == "CVE-2021-33503"
    assert store.aliases_of("PYSEC-2021-108") == {"CVE-2021-33503", "GHSA-q2q7-5pp4-w6pg"}
    assert store.group_id("GHSA-q2q7-5pp4-w6pg") == "CVE-2021-33503"


def test_dla_joins_distribution_records_of_its_cve(store: VulnStore) -> None:
    assert store.aliases_of("CVE-2022-1292") == {
        "DLA-3008-1",
        "DEBIAN-CVE-2022-1292",
        "ALPINE-CVE-2022-1292-openssl",
    }


@pytest.mark.parametrize(
    ("vuln_id", "severity", "score", "source"),
    [
        ("GHSA-35jh-r3h4-6jhm", Severity.HIGH, 7.2, "CVSS_V3"),
        ("GHSA-3pxv-7cmr-fjr4", Severity.MEDIUM, 6.9, "CVSS_V4"),
        ("ALPINE-CVE-2025-26519", Severity.HIGH, 7.0, "CVSS_V3"),
        ("DEBIAN-CVE-2005-2541", Severity.NEGLIGIBLE, None, "Debian urgency"),
    ],
)
def test_record_ratings(
    store: VulnStore, vuln_id: str, severity: Severity, score: float | None, source: str
) -> None:
    adv = store.advisory(vuln_id)
    assert adv is not None
    assert adv.rating is not None
    assert (adv.rating.severity, adv.rating.score, adv.rating.source) == (severity, score, source)


def test_debian_urgency_per_entry(store: VulnStore) -> None:
    by_id = {adv.id: entry for adv, entry in store.advisories_for("Debian:12", "tar")}
    assert set(by_id) == {"DEBIAN-CVE-2005-2541", "DEBIAN-CVE-2022-48303"}
    entry = by_id["DEBIAN-CVE-2005-2541"]
    assert entry.rating is not None
    assert entry.rating.severity is Severity.NEGLIGIBLE
    assert entry.specific("tracker_kind") == "unfixed"
    assert [e.kind.value for e in entry.ranges[0].events] == ["introduced"]


def test_unrated_alpine_record_takes_the_group_cvss(store: VulnStore) -> None:
    derived = store.advisory("ALPINE-CVE-2025-26519-musl")
    assert derived is not None
    assert derived.rating is None
    rating = store.rating_for_group("ALPINE-CVE-2025-26519-musl")
    assert rating is not None
    assert (rating.score, rating.source) == (7.0, "CVSS_V3")


def test_alpine_release_lookup(store: VulnStore) -> None:
    found = store.advisories_for("Alpine:v3.18", "musl")
    upstream = [e for a, e in found if a.id == "ALPINE-CVE-2025-26519"]
    assert [e.ranges[0].events[-1].version for e in upstream] == ["1.2.4-r3"]
    assert {e.ecosystem for _, e in found} == {"Alpine:v3.18"}
    every_release = store.advisories_for("Alpine", "musl")
    assert len([a for a, _ in every_release if a.id == "ALPINE-CVE-2025-26519"]) == 9


def test_dsa_fix_published(store: VulnStore) -> None:
    adv = store.advisory("DSA-3029-1")
    assert adv is not None
    assert adv.fix_published == datetime(2014, 9, 20, tzinfo=UTC)
    assert store.advisory("GHSA-35jh-r3h4-6jhm").fix_published is None  # type: ignore[union-attr]


def test_yaml_and_derived_json_parse_identically(vulndata: Path) -> None:
    derived = vulndata / "derived/osv-json-from-pypa-yaml/PyPI"
    pairs = sorted((vulndata / "osv/PyPI").glob("*.yaml"))
    assert len(pairs) > 100
    for yaml_path in pairs:
        json_path = derived / f"{yaml_path.stem}.json"
        (from_yaml,) = load_document(yaml_path.read_bytes(), where=str(yaml_path))
        (from_json,) = load_document(json_path.read_bytes(), where=str(json_path))
        assert parse_record(from_yaml, where="y") == parse_record(from_json, where="j"), yaml_path


def test_withdrawn_real_record_is_dropped(real_db: Path, tmp_path: Path, vulndata: Path) -> None:
    db = tmp_path / "copy.sqlite"
    db.write_bytes(real_db.read_bytes())
    doc = json.loads((vulndata / "osv/npm/GHSA-35jh-r3h4-6jhm.json").read_text())
    doc["modified"] = doc["withdrawn"] = "2025-01-01T00:00:00Z"
    path = tmp_path / "GHSA-35jh-r3h4-6jhm.json"
    path.write_text(json.dumps(doc))
    report = import_paths(db, [path], now=NOW)
    assert report.withdrawn == 1
    with VulnStore.open(db) as store:
        assert store.advisory("GHSA-35jh-r3h4-6jhm") is None
        lodash = {a.id for a, _ in store.advisories_for("npm", "lodash")}
        assert "GHSA-p6mc-m468-83gw" in lodash
        assert "GHSA-35jh-r3h4-6jhm" not in lodash
        assert store.group_id("GHSA-35jh-r3h4-6jhm") is None
