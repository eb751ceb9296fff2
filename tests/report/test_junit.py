"""JUnit XML: valid against the Ant JUnit XSD, one test case per policy control."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
import xmlschema
from report_results import debian_result, minimal_result
from report_verdicts import (
    FIX_VERSION,
    OPENSSL_KEY,
    POLICIES,
    REQUESTS_KEY,
    ZLIB_KEY,
    approved_verdict,
    disallowed_verdict,
)

from tidegate.core.models import ScanResult
from tidegate.core.policy import Verdict
from tidegate.report import ReportOptions, get_writer

XSD = xmlschema.XMLSchema(Path(__file__).parent / "schemas" / "JUnit.xsd")


def _xml(result: ScanResult, verdict: Verdict | None, policies: bool = True) -> str:
    out = io.StringIO()
    options = ReportOptions(policies=POLICIES if policies else ())
    get_writer("junit").write(result, out, options, verdict)
    return out.getvalue()


def _cases(text: str) -> dict[tuple[str, str], ET.Element]:
    root = ET.fromstring(text)
    return {
        (suite.get("name", ""), case.get("name", "")): case
        for suite in root.iter("testsuite")
        for case in suite.iter("testcase")
    }


@pytest.mark.parametrize(
    ("result", "verdict", "policies"),
    [
        (debian_result(), disallowed_verdict(), True),
        (debian_result(), disallowed_verdict(), False),
        (debian_result(), approved_verdict(), True),
        (debian_result(), None, True),
        (minimal_result(), None, True),
    ],
    ids=["disallowed", "disallowed-no-policies", "approved", "no-verdict", "empty"],
)
def test_document_validates_against_the_junit_xsd(
    result: ScanResult, verdict: Verdict | None, policies: bool
) -> None:
    XSD.validate(_xml(result, verdict, policies))


def test_xsd_catches_a_broken_document() -> None:
    text = _xml(debian_result(), disallowed_verdict()).replace(' hostname="localhost"', "")
    assert not XSD.is_valid(text)


def test_a_case_per_enabled_control_passing_or_failing() -> None:
    cases = _cases(_xml(debian_result(), disallowed_verdict()))
    baseline = sorted(c for s, c in cases if s == "policy: production baseline")
    assert baseline == ["block_root", "cve_denylist", "severity"]  # the allowlist is no check
    assert cases[("policy: production baseline", "block_root")].find("failure") is None
    failure = cases[("policy: production baseline", "cve_denylist")].find("failure")
    assert failure is not None
    assert failure.get("message") == "denied vulnerabilities present: CVE-2023-5678"
    assert OPENSSL_KEY in (failure.text or "")
    assert f"fix: upgrade libssl3 to {FIX_VERSION}" in (failure.text or "")
    assert "policy mode: enforce" in (failure.text or "")
    hardening = sorted(c for s, c in cases if s == "policy: hardening <audit>")
    assert hardening == ["block_secrets", "required_labels"]


def test_suite_counts_match_cases() -> None:
    root = ET.fromstring(_xml(debian_result(), disallowed_verdict()))
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases)
        failed = [c for c in cases if c.find("failure") is not None]
        assert int(suite.get("failures", "-1")) == len(failed)


def test_vulnerability_suite_follows_the_verdict() -> None:
    cases = _cases(_xml(debian_result(), disallowed_verdict()))
    assert cases[("vulnerabilities", ZLIB_KEY)].find("failure") is not None
    assert cases[("vulnerabilities", OPENSSL_KEY)].find("failure") is not None
    assert cases[("vulnerabilities", REQUESTS_KEY)].find("skipped") is not None  # acknowledged
    approved = _cases(_xml(debian_result(), approved_verdict()))
    assert all(
        c.find("failure") is None for (s, _), c in approved.items() if s == "vulnerabilities"
    )


def test_without_verdict_every_finding_fails() -> None:
    cases = _cases(_xml(debian_result(), None))
    assert {s for s, _ in cases} == {"vulnerabilities"}
    assert all(c.find("failure") is not None for c in cases.values())


def test_policy_without_its_definition_still_lists_failures_and_a_passing_case() -> None:
    cases = _cases(_xml(debian_result(), approved_verdict(), policies=False))
    assert ("policy: production baseline", "policy") in cases
    assert cases[("policy: production baseline", "policy")].find("failure") is None


@pytest.mark.parametrize("hostile", ["a\x00b\x1bc", "</failure><x>", "]]>&amp;", "\ud800"])
def test_hostile_text_stays_well_formed_and_valid(hostile: str) -> None:
    verdict = disallowed_verdict()
    first = verdict.results[0]
    failure = replace(first.failures[0], message=hostile, control=f"ctl {hostile}")
    verdict = replace(verdict, results=(replace(first, failures=(failure,), policy_name=hostile),))
    text = _xml(debian_result(), verdict)
    XSD.validate(text)
    root = ET.fromstring(text)
    assert root.find("testsuite") is not None
