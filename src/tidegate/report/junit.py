"""JUnit XML for CI test-report views: each policy a test suite, each of its controls a test case.

CI systems (Jenkins, GitLab, Azure, GitHub test-report actions) read the Ant JUnit format and
show failed test cases with their messages. The gate maps onto it directly: a suite per
applicable policy, a case per enabled control (passed, or failed with the message, the findings
behind it and the fix), and a "vulnerabilities" suite with a case per finding: failed when a
control of the verdict holds it against the image, skipped when acknowledged, passed otherwise.
Without a verdict every finding is a failure, since nothing has judged it.

The document follows the Ant schema (windyroad JUnit.xsd) exactly: `properties`, `system-out`
and `system-err` are always present, timestamps carry no zone, and text that XML 1.0 cannot
hold (control characters) is replaced, so a hostile package name cannot break the file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Final, TextIO

from tidegate.core.models import Finding, FixState, ScanResult
from tidegate.core.policy import (
    AcknowledgedFinding,
    AssurancePolicy,
    ControlFailure,
    Controls,
    PolicyResult,
    Verdict,
)
from tidegate.report.common import image_name, image_version, sorted_findings
from tidegate.report.interface import ReportOptions

_FILTERS: Final = frozenset({"grace", "cve_allowlist"})
"""Controls that only set findings aside; they cannot fail, so they are no test case."""
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class ControlOutcome:
    """One control of one policy as the reports list it: passed, or failed with its evidence."""

    control: str
    failure: ControlFailure | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None


def enabled_controls(policy: AssurancePolicy) -> list[str]:
    """The controls `policy` checks, in the order its `Controls` declares them."""
    names = []
    for spec in fields(Controls):
        value = getattr(policy.controls, spec.name)
        if spec.name not in _FILTERS and value not in (None, (), False):
            names.append(spec.name)
    return names


def control_outcomes(
    result: PolicyResult, policies: tuple[AssurancePolicy, ...]
) -> list[ControlOutcome]:
    """Every enabled control of the policy behind `result` with its outcome.

    The verdict names only failed controls; the passing ones come from the policy, when the
    caller handed it over. Without it a passed policy is one passing case named "policy".
    """
    policy = next((p for p in policies if p.id == result.policy_id), None)
    names = enabled_controls(policy) if policy is not None else []
    for failure in result.failures:
        if failure.control not in names:
            names.append(failure.control)
    if not names:
        return [ControlOutcome("policy")]
    by_control: dict[str, ControlFailure] = {}
    for failure in result.failures:
        by_control.setdefault(failure.control, failure)
    return [ControlOutcome(name, by_control.get(name)) for name in names]


class JUnitWriter:
    """JUnit XML: one test case per policy control, plus one per vulnerability."""

    name = "junit"
    description = "JUnit XML for CI test reports (a test case per policy control and per finding)"
    media_type = "application/xml"
    file_extension = ".junit.xml"

    def write(
        self,
        result: ScanResult,
        out: TextIO,
        options: ReportOptions,
        verdict: Verdict | None = None,
    ) -> None:
        root = build_tree(result, options, verdict)
        ET.indent(root, space="  ")
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write(ET.tostring(root, encoding="unicode"))
        out.write("\n")


def build_tree(
    result: ScanResult, options: ReportOptions, verdict: Verdict | None = None
) -> ET.Element:
    """The `testsuites` element: policy suites in the verdict's order, then vulnerabilities."""
    root = ET.Element("testsuites")
    when = verdict.evaluated_at if verdict is not None else result.scanned_at
    suites = [_policy_suite(result, r, options, verdict) for r in _results(verdict)]
    suites.append(_vulnerability_suite(result, verdict))
    for i, (name, package, properties, cases, out_text) in enumerate(suites):
        suite = _suite(root, name=name, package=package, suite_id=i, when=when, cases=cases)
        _properties(suite, properties)
        for case in cases:
            suite.append(case)
        ET.SubElement(suite, "system-out").text = _clean(out_text)
        ET.SubElement(suite, "system-err").text = ""
    return root


_Suite = tuple[str, str, list[tuple[str, str]], list[ET.Element], str]
"""name, package, properties, test cases, system-out text."""


def _results(verdict: Verdict | None) -> tuple[PolicyResult, ...]:
    return verdict.results if verdict is not None else ()


def _suite(
    root: ET.Element,
    *,
    name: str,
    package: str,
    suite_id: int,
    when: datetime,
    cases: list[ET.Element],
) -> ET.Element:
    failures = sum(1 for c in cases if c.find("failure") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    return ET.SubElement(
        root,
        "testsuite",
        {
            "name": _token(name),
            "package": _token(package),
            "id": str(suite_id),
            "timestamp": _timestamp(when),
            "hostname": "localhost",
            "tests": str(len(cases)),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(skipped),
            "time": "0",
        },
    )


def _properties(suite: ET.Element, properties: list[tuple[str, str]]) -> None:
    element = ET.SubElement(suite, "properties")
    for name, value in properties:
        ET.SubElement(element, "property", {"name": _token(name), "value": _clean(value)})


def _image_properties(result: ScanResult, verdict: Verdict | None) -> list[tuple[str, str]]:
    properties = [
        ("image", image_name(result)),
        ("image.reference", result.image.reference),
        ("image.digest", image_version(result)),
    ]
    if verdict is not None:
        properties += [("verdict", verdict.status.value), ("verdict.reason", verdict.reason)]
    snapshot = verdict.db_snapshot if verdict is not None else None
    if snapshot or result.db_snapshot:
        properties.append(("db.snapshot", snapshot or result.db_snapshot or ""))
    return properties


def _policy_suite(
    result: ScanResult, policy: PolicyResult, options: ReportOptions, verdict: Verdict | None
) -> _Suite:
    classname = f"tidegate.policy.{_token(policy.policy_name)}"
    cases = [
        _control_case(classname, policy, o) for o in control_outcomes(policy, options.policies)
    ]
    properties = [
        ("policy.id", policy.policy_id),
        ("policy.name", policy.policy_name),
        ("policy.version", str(policy.policy_version)),
        ("policy.mode", policy.mode.value),
        *_image_properties(result, verdict),
    ]
    acknowledged = [
        f"acknowledged: {a.finding} ({a.ack_id}"
        + (f", expires {a.expires.isoformat()})" if a.expires else ")")
        for a in policy.acknowledged
    ]
    return (
        f"policy: {policy.policy_name}",
        f"tidegate.policy.{policy.policy_id}",
        properties,
        cases,
        "\n".join(acknowledged),
    )


def _control_case(classname: str, policy: PolicyResult, outcome: ControlOutcome) -> ET.Element:
    case = ET.Element(
        "testcase", {"name": _token(outcome.control), "classname": classname, "time": "0"}
    )
    failure = outcome.failure
    if failure is None:
        return case
    lines = [f"{failure.message}", f"policy mode: {policy.mode.value}"]
    lines += [f"finding: {key}" for key in failure.findings]
    if failure.remediation:
        lines.append(f"fix: {failure.remediation}")
    element = ET.SubElement(
        case,
        "failure",
        {"message": _clean(failure.message), "type": _clean(f"tidegate.policy.{failure.control}")},
    )
    element.text = _clean("\n".join(lines))
    return case


def _vulnerability_suite(result: ScanResult, verdict: Verdict | None) -> _Suite:
    held = {k for r in _results(verdict) for f in r.failures for k in f.findings}
    acked = {a.finding: a for r in _results(verdict) for a in r.acknowledged}
    cases = [_finding_case(f, verdict is None, held, acked) for f in sorted_findings(result)]
    return (
        "vulnerabilities",
        "tidegate.vulnerabilities",
        _image_properties(result, verdict),
        cases,
        "",
    )


def _finding_case(
    finding: Finding, judge_all: bool, held: set[str], acked: dict[str, AcknowledgedFinding]
) -> ET.Element:
    key = f"{finding.id} {finding.package.name}@{finding.package.version}"
    case = ET.Element(
        "testcase",
        {
            "name": _token(key),
            "classname": f"tidegate.vulnerabilities.{_token(finding.package.name)}",
            "time": "0",
        },
    )
    if key in acked:
        ET.SubElement(case, "skipped", {"message": "acknowledged"})
    elif judge_all or key in held:
        message = f"{finding.id} ({finding.severity.value}) in {finding.package.name}"
        element = ET.SubElement(
            case, "failure", {"message": _clean(message), "type": finding.severity.value}
        )
        element.text = _clean(_finding_text(finding))
    return case


def _finding_text(finding: Finding) -> str:
    package = finding.package
    lines = [
        f"{finding.id} ({finding.severity.value}) in {package.name} {package.version}",
        f"package: {package.purl or package.name}",
    ]
    if finding.summary:
        lines.append(finding.summary)
    if finding.status is FixState.FIXED and finding.fixed_versions:
        lines.append(f"fix: upgrade {package.name} to {finding.fixed_versions[0]}")
    else:
        lines.append(f"fix: none available ({finding.status.value})")
    return "\n".join(lines)


def _timestamp(moment: datetime) -> str:
    # The Ant schema forbids a zone designator; the time is UTC.
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None, microsecond=0).isoformat()


def _clean(text: str) -> str:
    """Text XML 1.0 can carry: characters it forbids become U+FFFD."""
    return _XML_ILLEGAL.sub("\ufffd", text)


def _token(text: str) -> str:
    """An xs:token (no leading, trailing or repeated blanks), never empty."""
    return " ".join(_clean(text).split()) or "-"
