"""Findings built from record briefs (core/matching/briefs.py, the store's `briefs`) are exactly
the findings built from full record headers and per-record alias group look-ups: checked per
record on the real records imported into a DB, and on a whole match of every package the DB
names at versions inside and outside their ranges."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tidegate.core.advisory import Advisory, AffectedPackage, Rating
from tidegate.core.matching.briefs import MAX_REFERENCES, display_id, make_brief
from tidegate.core.matching.matcher import (
    BatchAdvisorySource,
    BriefAdvisorySource,
    match_packages,
)
from tidegate.core.models import Location, OSInfo, Package, PackageType
from tidegate.vulndb import VulnStore


class _PlainSource:
    """Only the AdvisorySource protocol of a store: the matcher's reference path (full
    records, one alias group question per hit)."""

    def __init__(self, store: VulnStore) -> None:
        self._store = store

    def advisories_for(
        self, ecosystem: str, name: str
    ) -> Sequence[tuple[Advisory, AffectedPackage]]:
        return self._store.advisories_for(ecosystem, name)

    def group_id(self, vuln_id: str) -> str | None:
        return self._store.group_id(vuln_id)

    def aliases_of(self, vuln_id: str) -> set[str]:
        return self._store.aliases_of(vuln_id)

    def rating_for_group(self, vuln_id: str) -> Rating | None:
        return self._store.rating_for_group(vuln_id)


def test_the_store_offers_briefs_and_the_reference_does_not(real_db: Path) -> None:
    with VulnStore.open(real_db) as store:
        assert isinstance(store, BriefAdvisorySource)
        assert not isinstance(_PlainSource(store), BatchAdvisorySource)


def test_every_brief_holds_what_the_header_and_group_say(real_db: Path) -> None:
    with VulnStore.open(real_db) as store:
        ids = [str(r[0]) for r in store._rows("SELECT id FROM advisories")]
        briefs = store.briefs([*ids, "NO-SUCH-ID"])
        assert "NO-SUCH-ID" not in briefs
        assert len(briefs) == len(ids) > 1000
        for vid in ids:
            header = store.header(vid)
            assert header is not None
            brief = briefs[vid]
            group = store.group_id(vid)
            ids_all = {vid, *header.aliases} | store.aliases_of(vid)
            assert brief.group == (group or vid)
            assert brief.ids == ids_all
            assert brief.display == display_id(brief.group, ids_all)
            assert brief.aliases == tuple(sorted(ids_all - {brief.display}))
            assert brief.summary == (header.summary or header.details[:300])
            assert brief.has_summary is bool(header.summary)
            assert (brief.published, brief.modified, brief.fix_published) == (
                header.published,
                header.modified,
                header.fix_published,
            )
            assert brief.references == tuple(dict.fromkeys(header.references))[:MAX_REFERENCES]
            assert brief.rating == header.rating
            assert brief.group_rating == store.rating_for_group(vid), vid


def _package(name: str, version: str, ptype: PackageType) -> Package:
    source = name if ptype in (PackageType.DEB, PackageType.APK) else None
    return Package(
        name=f"bin-{name}" if source else name,
        version=version,
        type=ptype,
        found_by="test",
        locations=(Location(f"/test/{name}"),),
        source_name=source,
        source_version=version if source else None,
    )


def _versions(entry: AffectedPackage) -> set[str]:
    named = {e.version for r in entry.ranges for e in r.events} | set(entry.versions)
    return {v for v in named - {"0", "*"} if len(v) < 40}  # not commit hashes


CASES = [
    ("Debian:12", PackageType.DEB, OSInfo(id="debian", version_id="12")),
    ("Alpine:v3.18", PackageType.APK, OSInfo(id="alpine", version_id="3.18.4")),
    ("PyPI", PackageType.PYPI, None),
    ("npm", PackageType.NPM, None),
    ("Go", PackageType.GOLANG, None),
    ("Maven", PackageType.MAVEN, None),
]


@pytest.mark.parametrize(("ecosystem", "ptype", "os_info"), CASES)
def test_findings_from_briefs_equal_findings_from_records(
    real_db: Path, ecosystem: str, ptype: PackageType, os_info: OSInfo | None
) -> None:
    with VulnStore.open(real_db) as store:
        names = [
            str(r[0])
            for r in store._rows(
                "SELECT DISTINCT name FROM affected WHERE ecosystem = ? ORDER BY name LIMIT 300",
                (ecosystem,),
            )
        ]
        if not names:
            pytest.skip(f"no {ecosystem} records in the real data")
        packages = []
        for name in names:
            versions: set[str] = set()
            for _, entry in store.advisories_for(ecosystem, name):
                versions |= _versions(entry)
            # 0.0.1 lies inside every range opened at 0; the named versions probe the edges.
            chosen = ["0.0.1", *sorted(versions)[:5]]
            packages += [_package(name, v, ptype) for v in chosen]
        fast = match_packages(packages, os_info, store)
    with VulnStore.open(real_db) as fresh:
        reference = match_packages(packages, os_info, _PlainSource(fresh))
    assert fast.findings == reference.findings
    assert fast.unknowns == reference.unknowns
    assert len(fast.findings) > 10, len(fast.findings)


def test_make_brief_prefers_a_cve_and_caps_references() -> None:
    brief = make_brief(
        vuln_id="GHSA-aaaa",
        group="CVE-2024-2",
        aliases=["CVE-2024-2", "CVE-2024-10"],
        members=["PYSEC-1", "GHSA-aaaa", "CVE-2024-2"],
        summary="",
        details="x" * 400,
        published=None,
        modified=datetime(2026, 1, 1, tzinfo=UTC),
        fix_published=None,
        references=[f"https://e/{i % 30}" for i in range(60)],
        rating=None,
        group_rating=None,
    )
    assert brief.display == "CVE-2024-10"  # the lowest CVE as text, as findings always showed
    assert brief.aliases == ("CVE-2024-2", "GHSA-aaaa", "PYSEC-1")
    assert brief.summary == "x" * 300
    assert not brief.has_summary
    assert len(brief.references) == MAX_REFERENCES
    assert brief.references[:2] == ("https://e/0", "https://e/1")
