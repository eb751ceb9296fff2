"""SARIF 2.1.0 for code-scanning dashboards (GitHub code scanning and other SARIF consumers).

One run of the "Tidegate" driver. Each vulnerability id is a rule (what it is, how bad, how to fix
it) and each vulnerable package a result pointing at the file that declares the package in the
image. Failed controls of the gate's verdict are results too, under one rule per control
("tidegate/policy/block_root"). GitHub rejects results without a location and orders alerts by
`security-severity`, so every result has a relative path and every vulnerability rule a score.
Acknowledged findings stay in the log, marked suppressed with the acknowledgement that covers them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, Final, TextIO
from urllib.parse import quote

from tidegate.core.models import Finding, FixState, Package, ScanResult, Severity
from tidegate.core.policy import AcknowledgedFinding, ControlFailure, PolicyResult, Verdict
from tidegate.report.common import image_name, image_version, package_ref, sorted_findings
from tidegate.report.interface import ReportOptions

SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION: Final = "2.1.0"
INFORMATION_URI: Final = "https://tidegate.dev"
POLICY_RULE_PREFIX: Final = "tidegate/policy/"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.NEGLIGIBLE: "note",
    Severity.UNKNOWN: "note",
}
# GitHub ranks alerts by security-severity (a CVSS-like score); a finding without a score gets
# the middle of its severity's CVSS band so that it still sorts where its severity says.
_SEVERITY_SCORE = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.0",
    Severity.NEGLIGIBLE: "0.1",
    Severity.UNKNOWN: "0.0",
}
_URI_SAFE = "/~!$&'()*+,;=@-._"
"""Kept as is in a location uri: RFC 3986 path characters except ":" (which would read as a
scheme in a relative reference's first segment)."""


class SarifWriter:
    """SARIF 2.1.0 log for code-scanning upload."""

    name = "sarif"
    description = "SARIF 2.1.0 log for code scanning (vulnerabilities and failed policy controls)"
    media_type = "application/sarif+json"
    file_extension = ".sarif"

    def write(
        self,
        result: ScanResult,
        out: TextIO,
        options: ReportOptions,
        verdict: Verdict | None = None,
    ) -> None:
        json.dump(build_log(result, options, verdict), out, indent=2, ensure_ascii=False)
        out.write("\n")


def build_log(
    result: ScanResult, options: ReportOptions, verdict: Verdict | None = None
) -> dict[str, Any]:
    """The SARIF log as plain JSON values: one run, rules before the results that cite them."""
    findings = sorted_findings(result)
    rules = _vulnerability_rules(findings)
    failures = list(_failures(verdict))
    rules += _policy_rules(failures)
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    acknowledged = _acknowledged(verdict)
    results = [_finding_result(result, f, index, acknowledged) for f in findings]
    results += [_failure_result(result, p, f, index) for p, f in failures]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "Tidegate",
                "version": options.tool_version,
                "semanticVersion": options.tool_version,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "results": results,
        "columnKind": "utf16CodeUnits",
        "properties": _run_properties(result, verdict),
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _run_properties(result: ScanResult, verdict: Verdict | None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "imageName": image_name(result),
        "imageReference": result.image.reference,
        "imageDigest": image_version(result),
        "dbSnapshot": result.db_snapshot,
    }
    if verdict is not None:
        properties["verdict"] = verdict.status.value
        properties["verdictReason"] = verdict.reason
    return properties


# --- vulnerabilities -------------------------------------------------------------------------


def _vulnerability_rules(findings: list[Finding]) -> list[dict[str, Any]]:
    by_id: dict[str, list[Finding]] = {}
    for finding in findings:
        by_id.setdefault(finding.id, []).append(finding)
    return [_vulnerability_rule(vid, group) for vid, group in by_id.items()]


def _vulnerability_rule(vuln_id: str, group: list[Finding]) -> dict[str, Any]:
    # One id may hit several packages; the rule speaks for the worst of them.
    worst = max(group, key=lambda f: (f.severity.rank, f.score or 0.0))
    summary = _first_line(worst.summary) or f"{vuln_id} in {worst.package.name}"
    return {
        "id": vuln_id,
        "name": _rule_name(vuln_id),
        "shortDescription": {"text": f"{vuln_id}: {summary}"},
        "fullDescription": {"text": worst.summary or summary},
        "helpUri": _help_uri(worst),
        "help": {"text": _help_text(vuln_id, group), "markdown": _help_markdown(vuln_id, group)},
        "defaultConfiguration": {"level": _LEVEL[worst.severity]},
        "properties": {
            "security-severity": _security_severity(worst),
            "precision": "very-high",
            "tags": ["security", "vulnerability", worst.severity.value],
        },
    }


def _rule_name(vuln_id: str) -> str:
    # SARIF rule names are identifier-like ("PascalCase"); ids carry dashes.
    return "Vulnerability" + "".join(part.capitalize() for part in vuln_id.split("-"))


def _security_severity(finding: Finding) -> str:
    if finding.score is not None:
        return f"{min(max(finding.score, 0.0), 10.0):.1f}"
    return _SEVERITY_SCORE[finding.severity]


def _help_uri(finding: Finding) -> str:
    ids = (finding.id, *finding.aliases)
    for vid in ids:
        if vid.startswith("GHSA-"):
            return f"https://github.com/advisories/{quote(vid)}"
    for vid in ids:
        if vid.startswith("CVE-"):
            return f"https://nvd.nist.gov/vuln/detail/{quote(vid)}"
    for reference in finding.references:
        if reference.startswith(("https://", "http://")):
            return reference
    return f"https://osv.dev/vulnerability/{quote(finding.id)}"


def _fix_sentence(finding: Finding) -> str:
    package = finding.package
    if finding.status is FixState.FIXED and finding.fixed_versions:
        return f"Upgrade {package.name} to {finding.fixed_versions[0]} or later."
    if finding.status is FixState.WONT_FIX:
        return f"No fix planned for {package.name}: remove it or replace the base image."
    return f"No fixed version of {package.name} yet: watch for one, or acknowledge the risk."


def _help_text(vuln_id: str, group: list[Finding]) -> str:
    lines = [f"{vuln_id} ({group[0].severity.value})."]
    if group[0].summary:
        lines.append(group[0].summary)
    lines += [
        f"{f.package.name} {f.package.version}: {_fix_sentence(f)}" for f in _unique_packages(group)
    ]
    return "\n".join(lines)


def _help_markdown(vuln_id: str, group: list[Finding]) -> str:
    lines = [f"**{_md(vuln_id)}** ({group[0].severity.value})", ""]
    if group[0].summary:
        lines += [_md(group[0].summary), ""]
    lines += ["| Package | Installed | Fixed version | Fix |", "| --- | --- | --- | --- |"]
    for f in _unique_packages(group):
        fixed = ", ".join(f.fixed_versions) if f.status is FixState.FIXED else f.status.value
        cells = (f.package.name, f.package.version, fixed, _fix_sentence(f))
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    references = [r for r in group[0].references if r.startswith(("https://", "http://"))]
    if references:
        lines += ["", "References:", *(f"- <{r}>" for r in references)]
    return "\n".join(lines)


def _unique_packages(group: list[Finding]) -> list[Finding]:
    seen: dict[tuple[str, str, str, str], Finding] = {}
    for finding in group:
        seen.setdefault(finding.package.key, finding)
    return list(seen.values())


def _finding_result(
    result: ScanResult,
    finding: Finding,
    index: dict[str, int],
    acknowledged: dict[str, AcknowledgedFinding],
) -> dict[str, Any]:
    package = finding.package
    fixed = (
        f"fixed in {', '.join(finding.fixed_versions)}"
        if finding.status is FixState.FIXED and finding.fixed_versions
        else f"no fixed version ({finding.status.value})"
    )
    text = (
        f"Package {package.name} {package.version} in image {image_name(result)} is affected by "
        f"{finding.id} ({finding.severity.value}); {fixed}. {_fix_sentence(finding)}"
    )
    sarif: dict[str, Any] = {
        "ruleId": finding.id,
        "ruleIndex": index[finding.id],
        "level": _LEVEL[finding.severity],
        "message": {"text": text},
        "locations": [_location(_package_uri(result, package), package.name)],
        "partialFingerprints": {"tidegateFinding/v1": _fingerprint(finding.id, _purl(package))},
        "properties": {
            "packageName": package.name,
            "installedVersion": package.version,
            "fixedVersions": list(finding.fixed_versions),
            "fixState": finding.status.value,
            "purl": _purl(package),
        },
    }
    ack = acknowledged.get(_finding_key(finding))
    if ack is not None:
        until = f" until {ack.expires.isoformat()}" if ack.expires else ""
        sarif["suppressions"] = [
            {"kind": "external", "justification": f"acknowledged by {ack.ack_id}{until}"}
        ]
    return sarif


def _purl(package: Package) -> str:
    return package_ref(package)


def _finding_key(finding: Finding) -> str:
    # The gate's name for a finding (core.assurance.finding_key), repeated here so that the
    # report does not depend on the evaluator.
    return f"{finding.id} {finding.package.name}@{finding.package.version}"


def _acknowledged(verdict: Verdict | None) -> dict[str, AcknowledgedFinding]:
    if verdict is None:
        return {}
    return {a.finding: a for r in verdict.results for a in r.acknowledged}


# --- policy failures -------------------------------------------------------------------------


def _failures(verdict: Verdict | None) -> Iterable[tuple[PolicyResult, ControlFailure]]:
    if verdict is None:
        return
    for result in verdict.results:
        for failure in result.failures:
            yield result, failure


def _policy_rules(failures: list[tuple[PolicyResult, ControlFailure]]) -> list[dict[str, Any]]:
    controls = sorted({f.control for _, f in failures})
    return [
        {
            "id": POLICY_RULE_PREFIX + control,
            "name": "PolicyControl" + "".join(p.capitalize() for p in control.split("_")),
            "shortDescription": {"text": f"Image assurance control {control!r} failed"},
            "fullDescription": {
                "text": f"The image fails the {control!r} control of an image assurance policy."
            },
            "help": {
                "text": "Each result names the policy, its mode and how to fix the image.",
                "markdown": "Each result names the policy, its mode and how to fix the image.",
            },
            "defaultConfiguration": {"level": "error"},
            "properties": {"tags": ["security", "policy", control]},
        }
        for control in controls
    ]


def _failure_result(
    result: ScanResult,
    policy: PolicyResult,
    failure: ControlFailure,
    index: dict[str, int],
) -> dict[str, Any]:
    rule_id = POLICY_RULE_PREFIX + failure.control
    text = f"Policy {policy.policy_name!r} ({policy.mode.value} mode): {failure.message}."
    if failure.remediation:
        text += f" Fix: {failure.remediation}."
    return {
        "ruleId": rule_id,
        "ruleIndex": index[rule_id],
        # An audit-mode failure blocks nothing: a warning, not an error.
        "level": "error" if policy.mode.value == "enforce" else "warning",
        "message": {"text": text},
        "locations": [_location(_failure_uri(result, failure), failure.control)],
        "partialFingerprints": {
            "tidegatePolicy/v1": _fingerprint(policy.policy_id, failure.control)
        },
        "properties": {
            "policyId": policy.policy_id,
            "policyName": policy.policy_name,
            "policyVersion": policy.policy_version,
            "mode": policy.mode.value,
            "findings": list(failure.findings),
            "remediation": failure.remediation,
        },
    }


def _failure_uri(result: ScanResult, failure: ControlFailure) -> str:
    """Where a failure points: the file of the first package behind it, else the image."""
    by_key = {_finding_key(f): f for f in result.findings}
    for key in failure.findings:
        finding = by_key.get(key)
        if finding is not None and finding.package.locations:
            return _package_uri(result, finding.package)
    for secret in result.catalogue.secrets if failure.control == "block_secrets" else ():
        return _uri(secret.path)
    return _image_uri(result)


# --- locations and ids -----------------------------------------------------------------------


def _location(uri: str, label: str) -> dict[str, Any]:
    # GitHub wants a region; a package database has no meaningful line, so line 1 stands for it.
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": uri},
            "region": {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1},
        },
        "message": {"text": label},
    }


def _package_uri(result: ScanResult, package: Package) -> str:
    if package.locations:
        return _uri(package.locations[0].path)
    return _image_uri(result)


def _image_uri(result: ScanResult) -> str:
    return _uri(image_name(result).replace(":", "/"))


def _uri(path: str) -> str:
    """A relative uri for a path in the image ("/var/lib/dpkg/status" -> "var/lib/dpkg/status")."""
    relative = path.lstrip("/") or "."
    return quote(relative, safe=_URI_SAFE)


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _md(text: str) -> str:
    """Escape text for a markdown table cell (and keep it on one line)."""
    escaped = "".join("\\" + c if c in "\\`*_[]<>|#" else c for c in text)
    return " ".join(escaped.split())
