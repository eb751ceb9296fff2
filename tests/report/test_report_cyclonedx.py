"""CycloneDX 1.6: valid per the library's strict schema validator, and saying the right things."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from report_results import FIXED_ID, debian_result, minimal_result

from tidegate.core.errors import ReportError
from tidegate.core.models import Finding, FixState, Location, ScanResult, Severity
from tidegate.report import ReportOptions, get_writer


def _bom_text(result: ScanResult, options: ReportOptions | None = None) -> str:
    out = io.StringIO()
    get_writer("cyclonedx").write(result, out, options or ReportOptions(document_id=FIXED_ID))
    return out.getvalue()


def _bom(result: ScanResult, options: ReportOptions | None = None) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_bom_text(result, options))
    return loaded


def _with_finding(**changes: Any) -> ScanResult:
    result = debian_result()
    finding: Finding = replace(result.findings[0], **changes)
    return replace(result, findings=(finding,))


@pytest.mark.parametrize("result", [debian_result(), minimal_result()], ids=["debian", "minimal"])
def test_bom_is_valid_cyclonedx_1_6(result: ScanResult) -> None:
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(
        _bom_text(result), all_errors=True
    )
    assert errors is None, [str(e) for e in errors or ()]


def test_image_is_the_subject_and_contains_every_component() -> None:
    bom = _bom(debian_result())
    assert bom["specVersion"] == "1.6"
    assert bom["serialNumber"] == f"urn:uuid:{FIXED_ID}"
    assert bom["metadata"]["timestamp"] == "2026-03-01T12:30:05+00:00"
    image = bom["metadata"]["component"]
    assert image["type"] == "container"
    assert image["version"] == "sha256:" + "d" * 64
    assert image["purl"].startswith("pkg:oci/api@sha256:")
    refs = {c["bom-ref"] for c in bom["components"]}
    (root,) = [d for d in bom["dependencies"] if d["ref"] == image["bom-ref"]]
    assert set(root["dependsOn"]) == refs


def test_os_is_an_operating_system_component() -> None:
    components = _bom(debian_result())["components"]
    (os_component,) = [c for c in components if c["type"] == "operating-system"]
    assert (os_component["name"], os_component["version"]) == ("debian", "12")


def test_packages_keep_purl_source_and_location() -> None:
    components = _bom(debian_result())["components"]
    libssl = next(c for c in components if c["name"] == "libssl3")
    assert libssl["purl"].startswith("pkg:deb/debian/libssl3@3.0.11-1~deb12u1?")
    props = {p["name"]: p["value"] for p in libssl["properties"]}
    assert props["tidegate:package:source_name"] == "openssl"
    assert props["tidegate:location:0:path"] == "/var/lib/dpkg/status"
    assert props["tidegate:location:0:layer"] == "sha256:" + "1" * 64


@pytest.mark.parametrize(
    ("licenses", "expected"),
    [
        (("MIT",), [{"license": {"id": "MIT"}}]),
        (("Apache-2.0 OR MIT",), [{"expression": "Apache-2.0 OR MIT"}]),
        (("GPL-2+",), [{"license": {"name": "GPL-2+"}}]),
        (
            ("Zlib", "GPL-2+"),
            [{"license": {"id": "Zlib"}}, {"license": {"name": "GPL-2+"}}],
        ),
        ((), None),
    ],
)
def test_licenses(licenses: tuple[str, ...], expected: list[dict[str, Any]] | None) -> None:
    result = debian_result()
    zlib = next(p for p in result.catalogue.packages if p.name == "zlib1g")
    result = replace(
        result,
        catalogue=replace(result.catalogue, packages=(replace(zlib, licenses=licenses),)),
        findings=(),
    )
    (component,) = [c for c in _bom(result)["components"] if c["name"] == "zlib1g"]
    assert component.get("licenses") == expected


@pytest.mark.parametrize(
    ("vector", "method", "vector_out"),
    [
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSSv31",
            "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        ),
        (
            "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSSv3",
            "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            "CVSSv4",
            "AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        ),
        (None, "other", None),
    ],
)
def test_rating_method_follows_the_vector(
    vector: str | None, method: str, vector_out: str | None
) -> None:
    bom = _bom(_with_finding(cvss_vector=vector))
    (rating,) = bom["vulnerabilities"][0]["ratings"]
    assert rating["method"] == method
    assert rating.get("vector") == vector_out
    assert rating["severity"] == "medium"
    assert rating["score"] == 5.3


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        (Severity.CRITICAL, "critical"),
        (Severity.HIGH, "high"),
        (Severity.LOW, "low"),
        (Severity.NEGLIGIBLE, "info"),
    ],
)
def test_severity_mapping(severity: Severity, expected: str) -> None:
    (rating,) = _bom(_with_finding(severity=severity))["vulnerabilities"][0]["ratings"]
    assert rating["severity"] == expected


def test_unrated_finding_has_no_rating() -> None:
    vuln = _bom(_with_finding(severity=Severity.UNKNOWN, score=None))["vulnerabilities"][0]
    assert "ratings" not in vuln


@pytest.mark.parametrize(
    ("status", "fixed", "response", "recommendation"),
    [
        (FixState.FIXED, ("3.0.11-1~deb12u2",), ["update"], "upgrade libssl3 to 3.0.11-1~deb12u2"),
        (FixState.WONT_FIX, (), ["will_not_fix"], None),
        (FixState.AFFECTED, (), ["can_not_fix"], None),
        (FixState.FIX_DEFERRED, (), ["can_not_fix"], None),
        (FixState.UNKNOWN, (), None, None),
    ],
)
def test_fix_state_becomes_response_and_recommendation(
    status: FixState, fixed: tuple[str, ...], response: list[str] | None, recommendation: str | None
) -> None:
    vuln = _bom(_with_finding(status=status, fixed_versions=fixed))["vulnerabilities"][0]
    assert vuln.get("analysis", {}).get("response") == response
    assert vuln.get("recommendation") == recommendation
    props = {p["name"]: p["value"] for p in vuln["properties"]}
    assert props["tidegate:finding:libssl3@3.0.11-1~deb12u1:status"] == status.value


def test_one_vulnerability_per_id_affecting_each_package() -> None:
    result = debian_result()
    openssl_finding = result.findings[0]
    zlib = next(p for p in result.catalogue.packages if p.name == "zlib1g")
    result = replace(result, findings=(openssl_finding, replace(openssl_finding, package=zlib)))
    bom = _bom(result)
    (vuln,) = bom["vulnerabilities"]
    component_refs = {c["bom-ref"] for c in bom["components"]}
    affected = [a["ref"] for a in vuln["affects"]]
    assert len(affected) == 2
    assert set(affected) <= component_refs
    assert vuln["source"] == {
        "name": "NVD",
        "url": "https://nvd.nist.gov/vuln/detail/CVE-2023-5678",
    }
    assert vuln["references"][0]["id"] == "DEBIAN-CVE-2023-5678"


def test_copies_of_one_package_get_their_own_bom_refs() -> None:
    result = debian_result()
    requests = next(p for p in result.catalogue.packages if p.name == "requests")
    copy = replace(requests, locations=(Location("/opt/tool/requests-2.31.0.dist-info/METADATA"),))
    result = replace(result, catalogue=replace(result.catalogue, packages=(requests, copy)))
    bom = _bom(result)
    refs = [c["bom-ref"] for c in bom["components"] if c["name"] == "requests"]
    assert len(set(refs)) == 2
    affected = bom["vulnerabilities"][-1]["affects"][0]["ref"]
    assert affected in refs


def test_serial_number_is_derived_from_image_and_scan_time_when_not_given() -> None:
    options = ReportOptions()
    result = debian_result()
    first = _bom(result, options)["serialNumber"]
    assert first == _bom(result, options)["serialNumber"]
    later = replace(result, scanned_at=result.scanned_at + timedelta(seconds=1))
    assert _bom(later, options)["serialNumber"] != first
    assert first != f"urn:uuid:{FIXED_ID}"


def _with_package(**changes: Any) -> ScanResult:
    result = debian_result()
    package = replace(result.catalogue.packages[0], **changes)
    return replace(result, catalogue=replace(result.catalogue, packages=(package,)), findings=())


@pytest.mark.parametrize(
    "changes",
    [
        {"version": ""},
        {"version": "1" * 2000},
        {"name": 'ü/we ird<>&"', "purl": ""},
        {"licenses": ("(broken", "")},
    ],
    ids=["empty-version", "huge-version", "odd-name-no-purl", "odd-licenses"],
)
def test_odd_packages_still_give_a_valid_bom(changes: dict[str, Any]) -> None:
    text = _bom_text(_with_package(**changes))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None


def test_huge_version_is_kept_whole_in_a_property() -> None:
    (component,) = [
        c for c in _bom(_with_package(version="9" * 2000))["components"] if c["type"] == "library"
    ]
    assert len(component["version"]) == 1024
    props = {p["name"]: p["value"] for p in component["properties"]}
    assert props["tidegate:package:version"] == "9" * 2000


def test_bad_purl_is_a_report_error_naming_the_package() -> None:
    with pytest.raises(ReportError, match=r"tzdata .*bad purl 'not a purl'"):
        _bom_text(_with_package(purl="not a purl"))
