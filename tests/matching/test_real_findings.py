"""Findings of real images against the real records of ../shared/vulndata, checked against
tables worked out by hand from the record files (each row cites the record it comes from).

The images (matching_data.py) hold vulnerable, fixed and not-affected versions on purpose: every
expected finding must appear with its fixed version, status and severity source, and nothing
else may appear (a fixed version, a release the record does not name, or an Alpine secdb "0"
entry must give no finding).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tidegate.core.matching.matcher import match_packages
from tidegate.core.models import Finding, FixState, ScanResult, Severity
from tidegate.image import SourceOptions, open_image
from tidegate.scan import scan_image
from tidegate.scan.match import match_result
from tidegate.vulndb import VulnStore

pytestmark = pytest.mark.system

D = "derived/osv/Debian/"
A = "derived/osv/Alpine/"


@dataclass(frozen=True, slots=True)
class Expected:
    package: str
    id: str
    fixed: tuple[str, ...]
    status: FixState
    records: frozenset[str]
    """Record ids that matched (the evidence)."""
    matched_on: str
    severity: Severity = Severity.UNKNOWN
    severity_source: str = ""


def _e(
    package: str,
    vid: str,
    fixed: str | tuple[str, ...] | None,
    status: FixState,
    records: str | tuple[str, ...],
    on: str = "source",
    severity: Severity = Severity.UNKNOWN,
    source: str = "",
) -> Expected:
    fixed_t = (fixed,) if isinstance(fixed, str) else (fixed or ())
    recs = frozenset((records,) if isinstance(records, str) else records)
    return Expected(package, vid, fixed_t, status, recs, on, severity, source)


F, AFF, DEF = FixState.FIXED, FixState.AFFECTED, FixState.FIX_DEFERRED

DEBIAN_EXPECTED = (
    # D/DEBIAN-CVE-2022-48303.json: tar, introduced 0 fixed 1.34+dfsg-1.2+deb12u1; installed
    # 1.34+dfsg-1.2 < fix. Urgency "not yet assigned" (no severity) and no alias with a CVSS.
    _e("tar", "CVE-2022-48303", "1.34+dfsg-1.2+deb12u1", F, "DEBIAN-CVE-2022-48303"),
    # D/DEBIAN-CVE-2005-2541.json: tar, introduced 0, no fix, tracker_kind unfixed, urgency
    # unimportant -> affected, no fixed version, severity negligible from the Debian urgency.
    _e("tar", "CVE-2005-2541", None, AFF, "DEBIAN-CVE-2005-2541",
       severity=Severity.NEGLIGIBLE, source="Debian urgency (DEBIAN-CVE-2005-2541)"),
    # D/DEBIAN-CVE-2023-38545.json: source curl, fixed 7.88.1-10+deb12u4 (DSA-5523-1);
    # binaries curl and libcurl4 (Source: curl) at 7.88.1-10+deb12u3.
    _e("curl", "CVE-2023-38545", "7.88.1-10+deb12u4", F, "DEBIAN-CVE-2023-38545"),
    _e("libcurl4", "CVE-2023-38545", "7.88.1-10+deb12u4", F, "DEBIAN-CVE-2023-38545"),
    # D/DEBIAN-CVE-2023-7008.json: systemd, no fix, tracker_kind no-dsa -> fix-deferred;
    # reached from binary libsystemd0 through Source: systemd.
    _e("libsystemd0", "CVE-2023-7008", None, DEF, "DEBIAN-CVE-2023-7008"),
    # D/DEBIAN-CVE-2024-25062.json: libxml2, no fix, no-dsa -> fix-deferred.
    _e("libxml2", "CVE-2024-25062", None, DEF, "DEBIAN-CVE-2024-25062"),
    # D/DEBIAN-CVE-2024-45490.json: expat, no fix, unfixed -> affected (libexpat1 -> expat).
    _e("libexpat1", "CVE-2024-45490", None, AFF, "DEBIAN-CVE-2024-45490"),
    # D/DEBIAN-CVE-2023-45853.json: zlib fixed 1:1.3.dfsg-2 > installed 1:1.2.13.dfsg-1.
    _e("zlib1g", "CVE-2023-45853", "1:1.3.dfsg-2", F, "DEBIAN-CVE-2023-45853"),
    # D/DEBIAN-CVE-2023-31484.json: perl fixed 5.36.0-7+deb12u3 > installed +deb12u1.
    _e("perl-base", "CVE-2023-31484", "5.36.0-7+deb12u3", F, "DEBIAN-CVE-2023-31484"),
    # D/DEBIAN-CVE-2024-37371.json: krb5 fixed 1.21.3-1 > installed 1.20.1-2+deb12u1.
    _e("libkrb5-3", "CVE-2024-37371", "1.21.3-1", F, "DEBIAN-CVE-2024-37371"),
    # D/DEBIAN-CVE-2011-3374.json: apt, no fix, unfixed, urgency unimportant.
    _e("apt", "CVE-2011-3374", None, AFF, "DEBIAN-CVE-2011-3374",
       severity=Severity.NEGLIGIBLE, source="Debian urgency (DEBIAN-CVE-2011-3374)"),
    # osv/PyPI/PYSEC-2023-74.yaml (and its JSON twin): requests introduced 2.3.0 fixed 2.31.0,
    # aliases CVE-2023-32681 + GHSA-j8r2-6x86-q33q -> one finding shown as the CVE; no severity.
    _e("requests", "CVE-2023-32681", "2.31.0", F, "PYSEC-2023-74", on="name"),
    # osv/npm/GHSA-35jh-r3h4-6jhm.json: lodash fixed 4.17.21, CVSS v3 high.
    # (GHSA-p6mc-m468-83gw is fixed at 4.17.20, the installed version: no finding.)
    _e("lodash", "CVE-2021-23337", "4.17.21", F, "GHSA-35jh-r3h4-6jhm", on="name",
       severity=Severity.HIGH, source="CVSS_V3 (GHSA-35jh-r3h4-6jhm)"),
    # osv/npm/GHSA-xvch-5gv4-984h.json: two ranges (0..0.2.4, 1.0.0..1.2.6); 1.2.5 in the second.
    _e("minimist", "CVE-2021-44906", "1.2.6", F, "GHSA-xvch-5gv4-984h", on="name",
       severity=Severity.CRITICAL, source="CVSS_V3 (GHSA-xvch-5gv4-984h)"),
    # raw-bulk: GHSA-269q-hmxg-m83q (0..4.1.77.Final, CVSS 5.5) and GHSA-5mcr-gq6c-3hq2
    # (4.0.0..4.1.59.Final) alias each other and CVE-2021-21290/CVE-2022-24823: one finding
    # under the lowest CVE, both fixes, severity of the first record with a CVSS.
    _e("io.netty:netty-codec-http", "CVE-2021-21290", ("4.1.59.Final", "4.1.77.Final"), F,
       ("GHSA-269q-hmxg-m83q", "GHSA-5mcr-gq6c-3hq2"), on="name",
       severity=Severity.MEDIUM, source="CVSS_V3 (GHSA-269q-hmxg-m83q)"),
    # raw-bulk GHSA-wx5j-54mm-rqqq: 4.0.0..4.1.71.Final, CVSS 6.5.
    _e("io.netty:netty-codec-http", "CVE-2021-43797", "4.1.71.Final", F,
       "GHSA-wx5j-54mm-rqqq", on="name",
       severity=Severity.MEDIUM, source="CVSS_V3 (GHSA-wx5j-54mm-rqqq)"),
    # raw-bulk GHSA-5jpm-x58v-624v: 0..4.1.108.Final, CVSS 5.3.
    # (GHSA-cqqj-4p63-rrmm fixed 4.1.44 and GHSA-hh82-3pmq-7frp 4.1.83..4.1.86: no finding.)
    _e("io.netty:netty-codec-http", "CVE-2024-29025", "4.1.108.Final", F,
       "GHSA-5jpm-x58v-624v", on="name",
       severity=Severity.MEDIUM, source="CVSS_V3 (GHSA-5jpm-x58v-624v)"),
)  # fmt: skip

DEBIAN_CLEAN = {
    # libssl3 (openssl) and libc6 (glibc): no Debian:12 record; osv/Debian/DLA-3008-1.json
    # names openssl in Debian:9 only and must not leak into Debian 12.
    "libssl3", "libc6",
    # fixed versions installed: libwebp 1.2.4-0.2+deb12u1 (DEBIAN-CVE-2023-4863), gnutls28
    # 3.7.9-2+deb12u2 (DEBIAN-CVE-2024-0553), dpkg 1.21.22 >= 1.21.8 (DEBIAN-CVE-2022-1664;
    # DLA-3022-1 is Debian:9), bash source 5.2.15-2 >= 5.2-1 (the binNMU version 5.2.15-2+b2 is
    # not what the record compares), ncurses 6.4-4 >= 6.4-3.
    "libwebp7", "libgnutls30", "dpkg", "bash", "libtinfo6",
    # no record at all
    "libtasn1-6",
    # every PYSEC record of urllib3 / jinja2 is fixed at or below these versions;
    # express 4.19.2 is GHSA-rv95-896h-c2vc's fix.
    "urllib3", "jinja2", "express",
}  # fmt: skip

ALPINE_EXPECTED = (
    # A/ALPINE-CVE-2023-4236{3,4,5}-busybox.json fixed 1.36.1-r7, A/...42366 fixed 1.36.1-r6;
    # installed 1.36.1-r5. The secdb "0" entries (CVE-2021-42373/42376/42377) mean not affected.
    *(
        _e("busybox", f"CVE-2023-{n}", "1.36.1-r7", F, f"ALPINE-CVE-2023-{n}-busybox")
        for n in (42363, 42364, 42365)
    ),
    _e("busybox", "CVE-2023-42366", "1.36.1-r6", F, "ALPINE-CVE-2023-42366-busybox"),
    # A/ALPINE-CVE-2025-0{167,665,725}-curl.json fixed 8.12.0-r0 > 8.11.1-r0, for curl and
    # libcurl (origin curl). CVE-2021-22897 is a "0" entry: not affected.
    *(
        _e(pkg, f"CVE-2025-{n}", "8.12.0-r0", F, f"ALPINE-CVE-2025-{n}-curl")
        for pkg in ("curl", "libcurl")
        for n in ("0167", "0665", "0725")
    ),
    # A/ALPINE-CVE-2023-6129-openssl.json fixed 3.1.4-r3, A/...6237 fixed 3.1.4-r4; installed
    # 3.1.4-r2 (CVE-2023-5678 fixed 3.1.4-r1: no finding). libcrypto3/libssl3 -> origin openssl.
    # The "0" entries CVE-2022-1292/2068/2274, CVE-2023-0466/4807 mean not affected.
    *(
        _e(pkg, cve, fix, F, f"ALPINE-{cve}-openssl")
        for pkg in ("libcrypto3", "libssl3")
        for cve, fix in (("CVE-2023-6129", "3.1.4-r3"), ("CVE-2023-6237", "3.1.4-r4"))
    ),
    # osv/Alpine/ALPINE-CVE-2025-26519.json (Alpine:v3.18: 0.9.13..1.2.4-r3, CVSS v3 high) and
    # A/ALPINE-CVE-2025-26519-musl.json (fixed 1.2.4-r3), both upstream CVE-2025-26519: merged.
    _e("musl", "CVE-2025-26519", "1.2.4-r3", F,
       ("ALPINE-CVE-2025-26519", "ALPINE-CVE-2025-26519-musl"),
       severity=Severity.HIGH, source="CVSS_V3 (ALPINE-CVE-2025-26519)"),
)  # fmt: skip

ALPINE_CLEAN = {
    # zlib 1.2.13-r1: CVE-2018-25032 / CVE-2022-37434 fixed earlier, CVE-2023-45853 and
    # CVE-2023-6992 are secdb "0" (not affected) entries.
    "zlib",
}


def scan_and_match(layout: Path, db: Path) -> ScanResult:
    source = open_image(f"oci:{layout}:1.0", SourceOptions())
    try:
        result = scan_image(source)
    finally:
        source.close()
    with VulnStore.open(db) as store:
        return match_result(result, store, store.snapshot_id())


@pytest.fixture(scope="module")
def debian_result(debian_layout: Path, real_db: Path) -> ScanResult:
    return scan_and_match(debian_layout, real_db)


@pytest.fixture(scope="module")
def alpine_result(alpine_layout: Path, real_db: Path) -> ScanResult:
    return scan_and_match(alpine_layout, real_db)


def _by_key(result: ScanResult) -> dict[tuple[str, str], Finding]:
    found: dict[tuple[str, str], Finding] = {}
    for f in result.findings:
        key = (f.package.name, f.id)
        assert key not in found, f"two findings for {key}: aliases were not merged"
        found[key] = f
    return found


def _check(finding: Finding, want: Expected) -> None:
    assert finding.fixed_versions == want.fixed
    assert finding.status is want.status
    assert {e.record_id for e in finding.evidence} == want.records
    assert {e.matched_on for e in finding.evidence} == {want.matched_on}
    assert finding.severity is want.severity
    if want.severity is not Severity.UNKNOWN:
        assert finding.severity_source == want.severity_source
    if want.status is not FixState.FIXED:
        assert finding.fixed_versions == ()
    for evidence in finding.evidence:
        assert evidence.range.startswith("introduced ")


@pytest.mark.parametrize("want", DEBIAN_EXPECTED, ids=lambda w: f"{w.package}-{w.id}")
def test_debian_expected_finding(debian_result: ScanResult, want: Expected) -> None:
    found = _by_key(debian_result)
    assert (want.package, want.id) in found, sorted(found)
    _check(found[(want.package, want.id)], want)


@pytest.mark.parametrize("want", ALPINE_EXPECTED, ids=lambda w: f"{w.package}-{w.id}")
def test_alpine_expected_finding(alpine_result: ScanResult, want: Expected) -> None:
    found = _by_key(alpine_result)
    assert (want.package, want.id) in found, sorted(found)
    _check(found[(want.package, want.id)], want)


@pytest.mark.parametrize(
    ("which", "expected", "clean"),
    [("debian", DEBIAN_EXPECTED, DEBIAN_CLEAN), ("alpine", ALPINE_EXPECTED, ALPINE_CLEAN)],
)
def test_nothing_else_is_found(
    request: pytest.FixtureRequest,
    which: str,
    expected: tuple[Expected, ...],
    clean: set[str],
) -> None:
    result: ScanResult = request.getfixturevalue(f"{which}_result")
    found = set(_by_key(result))
    assert found == {(w.package, w.id) for w in expected}
    catalogued = {p.name for p in result.catalogue.packages}
    assert clean <= catalogued, "a clean package is missing from the catalogue"
    assert not {f.package.name for f in result.findings} & clean
    assert result.db_snapshot
    assert not [u for u in result.catalogue.unknowns if u.source == "tidegate-osv"]


def test_binary_to_source_evidence(debian_result: ScanResult, alpine_result: ScanResult) -> None:
    """libcurl4 is found through its dpkg Source (curl), libcrypto3 through its apk origin."""
    for result, package, searched, ecosystem in (
        (debian_result, "libcurl4", "curl", "Debian:12"),
        (debian_result, "libsystemd0", "systemd", "Debian:12"),
        (alpine_result, "libcrypto3", "openssl", "Alpine:v3.18"),
        (alpine_result, "libcurl", "curl", "Alpine:v3.18"),
    ):
        findings = [f for f in result.findings if f.package.name == package]
        assert findings
        for evidence in (e for f in findings for e in f.evidence):
            assert (evidence.searched_name, evidence.matched_on) == (searched, "source")
            assert evidence.ecosystem == ecosystem


def test_aliases_merged_into_one_finding(debian_result: ScanResult) -> None:
    found = _by_key(debian_result)
    requests = found[("requests", "CVE-2023-32681")]
    assert {"PYSEC-2023-74", "GHSA-j8r2-6x86-q33q"} <= set(requests.aliases)
    netty = found[("io.netty:netty-codec-http", "CVE-2021-21290")]
    assert {"GHSA-269q-hmxg-m83q", "GHSA-5mcr-gq6c-3hq2", "CVE-2022-24823"} <= set(netty.aliases)
    # The Debian record of a CVE also known to Alpine's feed names both in its aliases.
    curl = found[("libcurl4", "CVE-2023-38545")]
    assert {"DEBIAN-CVE-2023-38545", "ALPINE-CVE-2023-38545-curl"} <= set(curl.aliases)


class _Unbatched:
    """The DB seen through the plain AdvisorySource protocol only (one lookup per package)."""

    def __init__(self, store: VulnStore) -> None:
        self.advisories_for = store.advisories_for
        self.group_id = store.group_id
        self.aliases_of = store.aliases_of
        self.rating_for_group = store.rating_for_group


@pytest.mark.parametrize("which", ["debian", "alpine"])
def test_batched_lookup_gives_the_same_findings(
    request: pytest.FixtureRequest, which: str, real_db: Path
) -> None:
    batched: ScanResult = request.getfixturevalue(f"{which}_result")
    with VulnStore.open(real_db) as store:
        plain = match_packages(batched.catalogue.packages, batched.catalogue.os, _Unbatched(store))
    assert tuple(plain.findings) == batched.findings
