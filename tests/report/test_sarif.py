"""SARIF 2.1.0: valid against the official schema, and what GitHub code scanning needs."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from report_results import OPENSSL, debian_result, minimal_result
from report_verdicts import OPENSSL_KEY, POLICIES, approved_verdict, disallowed_verdict

from tidegate.core.models import Location, ScanResult
from tidegate.core.policy import Verdict
from tidegate.report import ReportOptions, get_writer

SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8")
)
OPTIONS = ReportOptions(tool_version="1.2.3", policies=POLICIES)


def _log(result: ScanResult, verdict: Verdict | None = None) -> dict[str, Any]:
    out = io.StringIO()
    get_writer("sarif").write(result, out, OPTIONS, verdict)
    loaded: dict[str, Any] = json.loads(out.getvalue())
    return loaded


def _validate(log: dict[str, Any]) -> None:
    validator = jsonschema.Draft4Validator(
        SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    validator.validate(log)


@pytest.mark.parametrize(
    ("result", "verdict"),
    [
        (debian_result(), None),
        (debian_result(), disallowed_verdict()),
        (debian_result(), approved_verdict()),
        (minimal_result(), None),
    ],
    ids=["findings-only", "disallowed", "approved", "empty"],
)
def test_log_validates_against_the_sarif_schema(
    result: ScanResult, verdict: Verdict | None
) -> None:
    log = _log(result, verdict)
    _validate(log)
    assert log["version"] == "2.1.0"
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert len(log["runs"]) == 1


def test_schema_catches_a_broken_log() -> None:
    # The validator must be able to fail: a level outside the enum is rejected.
    log = _log(debian_result())
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        _validate(log)


def test_driver_and_one_rule_per_vulnerability() -> None:
    driver = _log(debian_result())["runs"][0]["tool"]["driver"]
    assert driver["name"] == "Tidegate"
    assert driver["version"] == "1.2.3"
    assert driver["informationUri"].startswith("https://")
    rules = {r["id"]: r for r in driver["rules"]}
    assert sorted(rules) == ["CVE-2023-45853", "CVE-2023-5678", "GHSA-j8r2-6x86-q33q"]
    openssl = rules["CVE-2023-5678"]
    assert openssl["properties"]["security-severity"] == "5.3"
    assert openssl["helpUri"] == "https://nvd.nist.gov/vuln/detail/CVE-2023-5678"
    assert "3.0.11-1~deb12u2" in openssl["help"]["text"]
    assert "3.0.11-1~deb12u2" in openssl["help"]["markdown"]
    assert rules["GHSA-j8r2-6x86-q33q"]["helpUri"].startswith("https://github.com/advisories/")
    # No score: the severity's band stands in, so GitHub still ranks it.
    assert rules["GHSA-j8r2-6x86-q33q"]["properties"]["security-severity"] == "0.0"


@pytest.mark.parametrize(
    ("rule_id", "level"),
    [("CVE-2023-45853", "error"), ("CVE-2023-5678", "warning"), ("GHSA-j8r2-6x86-q33q", "note")],
)
def test_levels_follow_severity(rule_id: str, level: str) -> None:
    results = {r["ruleId"]: r for r in _log(debian_result())["runs"][0]["results"]}
    assert results[rule_id]["level"] == level


def test_results_name_package_versions_and_a_relative_location() -> None:
    log = _log(debian_result())
    results = {r["ruleId"]: r for r in log["runs"][0]["results"]}
    openssl = results["CVE-2023-5678"]
    text = openssl["message"]["text"]
    for part in ("libssl3", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2"):
        assert part in text
    uri = openssl["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "var/lib/dpkg/status"
    for result in log["runs"][0]["results"]:
        location = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert location
        assert not location.startswith("/")
        rules = log["runs"][0]["tool"]["driver"]["rules"]
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_fingerprints_are_stable_per_id_and_purl() -> None:
    first = _log(debian_result())["runs"][0]["results"]
    moved = replace(debian_result(), scanned_at=debian_result().scanned_at.replace(year=2027))
    second = _log(moved)["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in first] == [r["partialFingerprints"] for r in second]
    prints = [next(iter(r["partialFingerprints"].values())) for r in first]
    assert len(set(prints)) == len(prints)


def test_policy_failures_are_results_with_a_rule_per_control() -> None:
    log = _log(debian_result(), disallowed_verdict())
    run = log["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for control in ("severity", "cve_denylist", "block_secrets"):
        assert f"tidegate/policy/{control}" in rule_ids
    policy = {r["ruleId"]: r for r in run["results"] if r["ruleId"].startswith("tidegate/")}
    denylist = policy["tidegate/policy/cve_denylist"]
    assert denylist["level"] == "error"  # enforce mode
    assert "upgrade libssl3 to 3.0.11-1~deb12u2" in denylist["message"]["text"]
    assert denylist["properties"]["findings"] == [OPENSSL_KEY]
    assert policy["tidegate/policy/block_secrets"]["level"] == "warning"  # audit mode
    secret_uri = policy["tidegate/policy/block_secrets"]["locations"][0]["physicalLocation"]
    assert secret_uri["artifactLocation"]["uri"] == "app/config/settings.ini"
    assert run["properties"]["verdict"] == "disallowed"


def test_without_verdict_only_vulnerability_results() -> None:
    results = _log(debian_result())["runs"][0]["results"]
    assert results
    assert not [r for r in results if r["ruleId"].startswith("tidegate/policy/")]


def test_acknowledged_findings_are_suppressed_not_dropped() -> None:
    results = {
        r["ruleId"]: r for r in _log(debian_result(), disallowed_verdict())["runs"][0]["results"]
    }
    suppressions = results["GHSA-j8r2-6x86-q33q"]["suppressions"]
    assert suppressions[0]["kind"] == "external"
    assert "ack-7" in suppressions[0]["justification"]
    assert "suppressions" not in results["CVE-2023-5678"]


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("/usr/lib/a b/x.jar!/META-INF/pom.xml", "usr/lib/a%20b/x.jar!/META-INF/pom.xml"),
        ("/opt/c:d/e", "opt/c%3Ad/e"),
        ("/weird/#?%", "weird/%23%3F%25"),
    ],
)
def test_hostile_paths_become_valid_relative_uris(path: str, uri: str) -> None:
    package = replace(OPENSSL, locations=(Location(path),))
    result = replace(
        minimal_result(), findings=(replace(debian_result().findings[0], package=package),)
    )
    log = _log(result)
    _validate(log)
    got = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert got["uri"] == uri
