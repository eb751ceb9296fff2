"""The pure matcher against a fake AdvisorySource: which ecosystem a package is looked up in,
binary and source queries, statuses, alias merging, severity choice, bad versions, GIT ranges.

`FakeSource` implements the `AdvisorySource` protocol over a list of records (the same contract
the vulnerability DB implements); it also records what was asked, so the tables can check the
lookups as well as the findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest

from tidegate.core.advisory import (
    Advisory,
    AffectedPackage,
    Event,
    EventKind,
    Range,
    RangeType,
    Rating,
)
from tidegate.core.matching.ecosystems import os_release_ecosystem, queries_for
from tidegate.core.matching.matcher import (
    AdvisorySource,
    BatchAdvisorySource,
    match_packages,
)
from tidegate.core.models import FixState, Location, OSInfo, Package, PackageType, Severity

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def rng(*events: tuple[str, str], kind: RangeType = RangeType.ECOSYSTEM) -> Range:
    return Range(kind, tuple(Event(EventKind(k), v) for k, v in events))


def entry(
    ecosystem: str, name: str, *ranges: Range, versions: tuple[str, ...] = (), **specific: str
) -> AffectedPackage:
    return AffectedPackage(
        ecosystem, name, ranges=ranges, versions=versions,
        ecosystem_specific=tuple(sorted(specific.items())),
    )  # fmt: skip


def adv(
    vid: str,
    *affected: AffectedPackage,
    aliases: tuple[str, ...] = (),
    rating: Rating | None = None,
) -> Advisory:
    return Advisory(vid, T0, aliases=aliases, affected=affected, rating=rating, summary=vid)


@dataclass
class FakeSource:
    """An in-memory AdvisorySource: aliases group records that name each other."""

    records: Sequence[Advisory]
    asked: list[tuple[str, str]] = field(default_factory=list)

    def advisories_for(
        self, ecosystem: str, name: str
    ) -> Sequence[tuple[Advisory, AffectedPackage]]:
        self.asked.append((ecosystem, name))
        exact = ":" in ecosystem
        return [
            (a, e)
            for a in sorted(self.records, key=lambda r: r.id)
            for e in a.affected
            if e.name == name
            and (e.ecosystem == ecosystem if exact else e.ecosystem.split(":")[0] == ecosystem)
        ]

    def _group(self, vuln_id: str) -> set[str]:
        """Every id linked to `vuln_id` through records' aliases (transitively)."""
        group = {vuln_id}
        grown = True
        while grown:
            linked = [{a.id, *a.aliases} for a in self.records if group & {a.id, *a.aliases}]
            before = len(group)
            group = group.union(*linked)
            grown = len(group) > before
        return group

    def group_id(self, vuln_id: str) -> str | None:
        group = self._group(vuln_id)
        cves = sorted(i for i in group if i.startswith("CVE-"))
        return cves[0] if cves else min(group)

    def aliases_of(self, vuln_id: str) -> set[str]:
        return self._group(vuln_id) - {vuln_id}

    def rating_for_group(self, vuln_id: str) -> Rating | None:
        group = self._group(vuln_id)
        ratings = [a.rating for a in self.records if a.id in group and a.rating is not None]
        return max(ratings, key=lambda r: r.score or 0.0) if ratings else None


def pkg(
    name: str,
    version: str,
    ptype: PackageType,
    source: str | None = None,
    source_version: str | None = None,
) -> Package:
    return Package(
        name, version, ptype, "test", locations=(Location(f"/x/{name}"),),
        source_name=source, source_version=source_version,
    )  # fmt: skip


DEBIAN = OSInfo("debian", "12")
ALPINE = OSInfo("alpine", "3.18.4")

# --- which ecosystem ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("os_id", "version_id", "expected"),
    [
        ("debian", "12", "Debian:12"),
        ("debian", "12.5", "Debian:12"),
        ("ubuntu", "22.04", "Ubuntu:22.04"),
        ("ubuntu", "22.04.3", "Ubuntu:22.04"),  # point release of an LTS -> the LTS
        ("alpine", "3.18.4", "Alpine:v3.18"),
        ("almalinux", "9.3", "AlmaLinux:9"),
        ("rocky", "8.9", "Rocky Linux:8"),
        ("rhel", "9.2", "Red Hat:9"),
        ("opensuse-leap", "15.5", "openSUSE:15"),
        ("debian", "", None),  # sid / testing without VERSION_ID
        ("arch", "", None),
        ("gentoo", "2.14", None),
    ],
)
def test_os_release_ecosystem(os_id: str, version_id: str, expected: str | None) -> None:
    assert os_release_ecosystem(OSInfo(os_id, version_id)) == expected


@pytest.mark.parametrize(
    ("package", "os", "expected"),
    [
        # dpkg: the Source field (and its version, binNMU suffix dropped) is what feeds name
        (
            pkg("libssl3", "3.0.11-1~deb12u2", PackageType.DEB, "openssl", "3.0.11-1~deb12u2"),
            DEBIAN,
            [("Debian:12", "openssl", "3.0.11-1~deb12u2", "source")],
        ),
        (
            pkg("bash", "5.2.15-2+b2", PackageType.DEB, "bash", "5.2.15-2"),
            DEBIAN,
            [("Debian:12", "bash", "5.2.15-2", "source")],
        ),
        (pkg("tar", "1.34", PackageType.DEB), DEBIAN, [("Debian:12", "tar", "1.34", "binary")]),
        # apk: the origin
        (
            pkg("libcrypto3", "3.1.4-r2", PackageType.APK, "openssl"),
            ALPINE,
            [("Alpine:v3.18", "openssl", "3.1.4-r2", "source")],
        ),
        # rpm: binary names first, then the source rpm's name with the binary's version
        (
            pkg("openssl-libs", "1:3.0.7-24.el9", PackageType.RPM, "openssl"),
            OSInfo("almalinux", "9.3"),
            [
                ("AlmaLinux:9", "openssl-libs", "1:3.0.7-24.el9", "binary"),
                ("AlmaLinux:9", "openssl", "1:3.0.7-24.el9", "source"),
            ],
        ),
        (
            pkg("bash", "5.1.8-6.el9", PackageType.RPM, "bash"),
            OSInfo("rhel", "9.2"),
            [("Red Hat", "bash", "5.1.8-6.el9", "binary")],  # Red Hat: looked up by family
        ),
        # languages ignore the OS; Go's stdlib is matched as such
        (
            pkg("requests", "2.30.0", PackageType.PYPI),
            None,
            [("PyPI", "requests", "2.30.0", "name")],
        ),
        (
            pkg("stdlib", "1.21.1", PackageType.GOLANG),
            DEBIAN,
            [("Go", "stdlib", "1.21.1", "stdlib")],
        ),
        # OS packages without a known distribution: nothing to look up
        (pkg("musl", "1.2.4-r2", PackageType.APK, "musl"), None, []),
        (pkg("tar", "1.34", PackageType.DEB), OSInfo("arch", ""), []),
    ],
)
def test_queries_for(
    package: Package, os: OSInfo | None, expected: list[tuple[str, str, str, str]]
) -> None:
    got = [(q.lookup, q.name, q.version, q.matched_on) for q in queries_for(package, os)]
    assert got == expected


# --- findings ----------------------------------------------------------------------------------

DEB_OPENSSL = adv(
    "DEBIAN-CVE-2023-5678",
    entry("Debian:12", "openssl", rng(("introduced", "0"), ("fixed", "3.0.13-1~deb12u1"))),
    entry("Debian:11", "openssl", rng(("introduced", "0"), ("fixed", "1.1.1w-0+deb11u2"))),
    aliases=("CVE-2023-5678",),
)
DEB_SYSTEMD_NODSA = adv(
    "DEBIAN-CVE-2023-7008",
    entry("Debian:12", "systemd", rng(("introduced", "0")), tracker_kind="no-dsa"),
)
DEB_TAR_IGNORED = adv(
    "DEBIAN-CVE-2005-2541",
    entry("Debian:12", "tar", rng(("introduced", "0")), tracker_kind="ignored"),
)
DEB_EXPAT_UNFIXED = adv(
    "DEBIAN-CVE-2024-45490",
    entry("Debian:12", "expat", rng(("introduced", "0")), tracker_kind="unfixed"),
)
ALPINE_ZLIB_NOT_AFFECTED = adv(  # secdb "0": never affected this branch
    "ALPINE-CVE-2023-45853-zlib", entry("Alpine:v3.18", "zlib", rng(("introduced", "0")))
)
ALPINE_MUSL = adv(
    "ALPINE-CVE-2025-26519",
    entry("Alpine:v3.18", "musl", rng(("introduced", "0.9.13"), ("fixed", "1.2.4-r3"))),
    aliases=("CVE-2025-26519",),
)
ALMA_OPENSSL = adv(
    "ALSA-2024:1234",
    entry("AlmaLinux:9", "openssl", rng(("introduced", "0"), ("fixed", "1:3.0.7-25.el9"))),
    entry("AlmaLinux:9", "openssl-libs", rng(("introduced", "0"), ("fixed", "1:3.0.7-25.el9"))),
    aliases=("CVE-2023-5678",),
)
CVSS = Rating(Severity.HIGH, 7.5, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "CVSS_V3")
PYSEC = adv(
    "PYSEC-2023-74",
    entry(
        "PyPI", "requests",
        rng(("introduced", "0"), ("fixed", "74ea7cf"), kind=RangeType.GIT),
        rng(("introduced", "2.3.0"), ("fixed", "2.31.0")),
    ),
    aliases=("CVE-2023-32681", "GHSA-j8r2-6x86-q33q"),
)  # fmt: skip
GHSA = adv(
    "GHSA-j8r2-6x86-q33q",
    entry("PyPI", "requests", rng(("introduced", "2.3.0"), ("fixed", "2.31.0"))),
    aliases=("CVE-2023-32681",),
    rating=CVSS,
)
GIT_ONLY = adv(
    "OSV-GIT-1",
    entry("PyPI", "requests", rng(("introduced", "0"), ("fixed", "abc"), kind=RangeType.GIT)),
)
NPM_TWO_RANGES = adv(
    "GHSA-xvch-5gv4-984h",
    entry(
        "npm", "minimist",
        rng(("introduced", "0"), ("fixed", "0.2.4")),
        rng(("introduced", "1.0.0"), ("fixed", "1.2.6")),
    ),
    aliases=("CVE-2021-44906",),
)  # fmt: skip
GO_LAST_AFFECTED = adv(
    "GO-2099-0001",
    entry("Go", "stdlib", rng(("introduced", "1.21.0"), ("last_affected", "1.21.4"))),
)
RECORDS = (
    DEB_OPENSSL, DEB_SYSTEMD_NODSA, DEB_TAR_IGNORED, DEB_EXPAT_UNFIXED, ALPINE_ZLIB_NOT_AFFECTED,
    ALPINE_MUSL, ALMA_OPENSSL, PYSEC, GHSA, GIT_ONLY, NPM_TWO_RANGES, GO_LAST_AFFECTED,
)  # fmt: skip

Row = tuple[str, FixState, tuple[str, ...], frozenset[str]]
"""(finding id, status, fixed versions, records in the evidence)."""


def _row(vid: str, status: FixState, fixed: tuple[str, ...], *records: str) -> Row:
    return (vid, status, fixed, frozenset(records))


CASES: list[tuple[str, Package, OSInfo | None, list[Row]]] = [
    ("deb source, vulnerable", pkg("libssl3", "3.0.11-1~deb12u2", PackageType.DEB, "openssl",
     "3.0.11-1~deb12u2"), DEBIAN,
     [_row("CVE-2023-5678", FixState.FIXED, ("3.0.13-1~deb12u1",), "DEBIAN-CVE-2023-5678")]),
    ("deb at the fix", pkg("libssl3", "3.0.13-1~deb12u1", PackageType.DEB, "openssl",
     "3.0.13-1~deb12u1"), DEBIAN, []),
    ("other release's entry is ignored", pkg("libssl3", "1.1.1n-0+deb11u5", PackageType.DEB,
     "openssl", "1.1.1n-0+deb11u5"), OSInfo("debian", "10"), []),
    ("no-dsa -> fix-deferred", pkg("libsystemd0", "252.19-1", PackageType.DEB, "systemd",
     "252.19-1"), DEBIAN,
     [_row("DEBIAN-CVE-2023-7008", FixState.FIX_DEFERRED, (), "DEBIAN-CVE-2023-7008")]),
    ("ignored -> wont-fix", pkg("tar", "1.34+dfsg-1.2", PackageType.DEB, "tar",
     "1.34+dfsg-1.2"), DEBIAN,
     [_row("DEBIAN-CVE-2005-2541", FixState.WONT_FIX, (), "DEBIAN-CVE-2005-2541")]),
    ("unfixed -> affected", pkg("libexpat1", "2.5.0-1", PackageType.DEB, "expat", "2.5.0-1"),
     DEBIAN, [_row("DEBIAN-CVE-2024-45490", FixState.AFFECTED, (), "DEBIAN-CVE-2024-45490")]),
    ("alpine secdb 0 entry: not affected", pkg("zlib", "1.2.13-r1", PackageType.APK, "zlib"),
     ALPINE, []),
    ("alpine origin", pkg("musl-utils", "1.2.4-r2", PackageType.APK, "musl"), ALPINE,
     [_row("CVE-2025-26519", FixState.FIXED, ("1.2.4-r3",), "ALPINE-CVE-2025-26519")]),
    ("alpine below introduced", pkg("musl", "0.9.12-r0", PackageType.APK, "musl"), ALPINE, []),
    ("rpm binary and source entries merge", pkg("openssl-libs", "1:3.0.7-24.el9",
     PackageType.RPM, "openssl"), OSInfo("almalinux", "9.3"),
     [_row("CVE-2023-5678", FixState.FIXED, ("1:3.0.7-25.el9",), "ALSA-2024:1234")]),
    ("aliases merge, GIT range ignored", pkg("requests", "2.30.0", PackageType.PYPI), None,
     [_row("CVE-2023-32681", FixState.FIXED, ("2.31.0",), "PYSEC-2023-74",
           "GHSA-j8r2-6x86-q33q")]),
    ("PEP 503 name", pkg("Requests", "2.31.0", PackageType.PYPI), None, []),
    ("second of two ranges", pkg("minimist", "1.2.5", PackageType.NPM), None,
     [_row("CVE-2021-44906", FixState.FIXED, ("1.2.6",), "GHSA-xvch-5gv4-984h")]),
    ("first of two ranges", pkg("minimist", "0.0.8", PackageType.NPM), None,
     [_row("CVE-2021-44906", FixState.FIXED, ("0.2.4",), "GHSA-xvch-5gv4-984h")]),
    ("between the two ranges", pkg("minimist", "0.2.4", PackageType.NPM), None, []),
    ("last_affected bound, inside", pkg("stdlib", "1.21.4", PackageType.GOLANG), None,
     [_row("GO-2099-0001", FixState.AFFECTED, (), "GO-2099-0001")]),
    ("last_affected bound, past it", pkg("stdlib", "1.21.5", PackageType.GOLANG), None, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("package", "os", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_match_table(package: Package, os: OSInfo | None, expected: list[Row]) -> None:
    source = FakeSource(RECORDS)
    outcome = match_packages([package], os, source)
    got = [
        (f.id, f.status, f.fixed_versions, frozenset(e.record_id for e in f.evidence))
        for f in outcome.findings
    ]
    assert got == expected
    assert outcome.unknowns == []


def test_rpm_queries_binary_and_source() -> None:
    source = FakeSource(RECORDS)
    package = pkg("openssl-libs", "1:3.0.7-24.el9", PackageType.RPM, "openssl")
    outcome = match_packages([package], OSInfo("almalinux", "9.3"), source)
    assert source.asked == [("AlmaLinux:9", "openssl-libs"), ("AlmaLinux:9", "openssl")]
    [finding] = outcome.findings
    assert {(e.searched_name, e.matched_on) for e in finding.evidence} == {
        ("openssl-libs", "binary"),
        ("openssl", "source"),
    }


def test_finding_details_from_merged_records() -> None:
    outcome = match_packages(
        [pkg("requests", "2.30.0", PackageType.PYPI)], None, FakeSource(RECORDS)
    )
    [finding] = outcome.findings
    assert finding.id == "CVE-2023-32681"
    assert set(finding.aliases) == {"PYSEC-2023-74", "GHSA-j8r2-6x86-q33q"}
    # the CVSS of the GHSA record wins, and says where it came from
    assert (finding.severity, finding.score) == (Severity.HIGH, 7.5)
    assert finding.severity_source == "CVSS_V3 (GHSA-j8r2-6x86-q33q)"
    assert finding.cvss_vector == CVSS.vector
    assert {e.range for e in finding.evidence} == {"introduced 2.3.0, fixed 2.31.0"}


def test_vendor_rating_beats_the_group_cvss() -> None:
    """A Debian entry's own urgency is what Debian thinks of it in this release; the group's
    CVSS still gives the score."""
    urgency = Rating(Severity.LOW, source="Debian urgency")
    deb = adv(
        "DEBIAN-CVE-2023-32681",
        replace(entry("Debian:12", "requests", rng(("introduced", "0"))), rating=urgency),
        aliases=("CVE-2023-32681",),
    )
    source = FakeSource((deb, GHSA))
    package = pkg("python3-requests", "2.28.1", PackageType.DEB, "requests", "2.28.1")
    [finding] = match_packages([package], DEBIAN, source).findings
    assert finding.severity is Severity.LOW
    assert finding.severity_source == "Debian urgency (DEBIAN-CVE-2023-32681)"
    assert finding.score == 7.5


@pytest.mark.parametrize(
    ("package", "os"),
    [
        (pkg("libssl3", "not a version!", PackageType.DEB, "openssl", "not a version!"), DEBIAN),
        (pkg("requests", "2.x.y-bogus", PackageType.PYPI), None),
    ],
)
def test_invalid_installed_version_is_an_unknown(package: Package, os: OSInfo | None) -> None:
    other = pkg("minimist", "1.2.5", PackageType.NPM)
    outcome = match_packages([package, other], os, FakeSource(RECORDS))
    [unknown] = outcome.unknowns
    assert unknown.where == f"/x/{package.name}"
    assert "not matched" in unknown.reason
    assert [f.package.name for f in outcome.findings] == ["minimist"]  # the scan goes on


def test_fake_source_is_not_batched() -> None:
    """The table above runs the per-package path; tests/matching runs the DB's batched one."""
    source: AdvisorySource = FakeSource(RECORDS)
    assert not isinstance(source, BatchAdvisorySource)
