"""The gate without a console: `--policy FILE.yaml`, a console that is away, report artifacts.

Report artifacts are checked as their consumers read them: SARIF against the SARIF 2.1.0 schema,
JUnit against the Ant JUnit XSD (both kept in tests/report/schemas), and the HTML report opened
in headless Chromium.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import xmlschema
from gate_support import ScanFn, closed_port_url

from tidegate.cli.exit_codes import ExitCode

SCHEMAS = Path(__file__).resolve().parents[1] / "report" / "schemas"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FORMATS = "json,sarif,junit,html,cyclonedx"

POLICY_FILE = """\
- kind: Policy
  name: no-high
  mode: {mode}
  controls:
    severity: {{max_severity: medium}}
- kind: Policy
  name: other-team
  mode: enforce
  scope: {{repositories: ["other/*"]}}
  controls:
    block_root: true
"""

ACK_DOC = """\
---
kind: Acknowledgement
vulnerability: CVE-2021-23337
scope: global
package_name: lodash
justification: lodash.template is never called with user input
expires: 2999-01-01T00:00:00Z
"""


def _policy(tmp_path: Path, mode: str, ack: bool = False) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_FILE.format(mode=mode) + (ACK_DOC if ack else ""), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mode", "flag", "ack", "code", "says"),
    [
        ("enforce", "--enforce", False, ExitCode.POLICY_FAILED, "BUILD FAILED"),
        ("enforce", "--no-enforce", False, ExitCode.OK, "WOULD FAIL with --enforce"),
        ("audit", "--enforce", False, ExitCode.OK, "audit-only"),
        ("audit", "--no-enforce", False, ExitCode.OK, "audit-only"),
        ("enforce", "--enforce", True, ExitCode.OK, "1 finding(s) set aside by acknowledgements"),
    ],
    ids=["enforce-enforce", "enforce-audit", "audit-enforce", "audit-audit", "acknowledged"],
)
def test_offline_policy_file(
    scan: ScanFn, tmp_path: Path, mode: str, flag: str, ack: bool, code: ExitCode, says: str
) -> None:
    run = scan("--policy", str(_policy(tmp_path, mode, ack)), flag, "-f", "json")
    assert run.code == code, run.err
    assert says in run.err
    assert "policy file" in run.err
    verdict = json.loads(run.out)["verdict"]
    # The other team's policy is out of scope: only what covers the image is evaluated.
    assert [p["name"] for p in verdict["policies"]] == ["no-high"]


def test_offline_policy_file_errors_name_the_document_and_field(
    scan: ScanFn, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- kind: Policy\n  name: x\n  controls: {severty: {}}\n", encoding="utf-8")
    run = scan("--policy", str(bad))
    assert run.code == ExitCode.USAGE
    assert "document 1 (Policy)" in run.err
    assert "controls.severty" in run.err


@pytest.mark.parametrize(
    ("fail", "code", "says"),
    [
        ("--fail-on-unreachable", ExitCode.CONSOLE_UNREACHABLE, "failing the build"),
        ("--no-fail-on-unreachable", ExitCode.OK, "carrying on without the console"),
    ],
)
def test_console_unreachable(
    scan: ScanFn, tmp_path: Path, fail: str, code: ExitCode, says: str
) -> None:
    reports = tmp_path / "reports"
    run = scan(
        "--console", closed_port_url(), "--token", "tg_x", fail, "--report-dir", str(reports)
    )
    assert run.code == code, run.err
    assert "cannot be reached" in run.err
    assert says in run.err
    # The build keeps its artifacts either way.
    assert sorted(p.name for p in reports.iterdir()) == [
        "tidegate-report.html",
        "tidegate-report.json",
        "tidegate-report.junit.xml",
        "tidegate-report.sarif",
    ]


def test_token_and_console_from_the_environment(scan: ScanFn) -> None:
    run = scan(env={"TIDEGATE_CONSOLE": closed_port_url(), "TIDEGATE_TOKEN": "tg_x"})
    assert run.code == ExitCode.CONSOLE_UNREACHABLE, run.err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--console", "http://127.0.0.1:1"), "--console needs --token"),
        (("--register",), "--register needs --console"),
        (("--policy", "/nonexistent.yaml"), "--policy /nonexistent.yaml: no such file"),
        (("--report-dir", "x", "--report-format", "json,pdf"), "unknown report format 'pdf'"),
    ],
)
def test_bad_gate_options_are_usage_errors(scan: ScanFn, args: tuple[str, ...], says: str) -> None:
    run = scan(*args)
    assert run.code == ExitCode.USAGE
    assert says in run.err


@pytest.fixture
def reports(scan: ScanFn, tmp_path: Path) -> Path:
    out = tmp_path / "reports"
    run = scan(
        "--policy",
        str(_policy(tmp_path, "enforce")),
        "--report-dir",
        str(out),
        "--report-format",
        FORMATS,
    )
    assert run.code == ExitCode.OK, run.err
    return out


def test_report_dir_holds_every_format_with_the_verdict(reports: Path) -> None:
    assert sorted(p.name for p in reports.iterdir()) == [
        "tidegate-report.cdx.json",
        "tidegate-report.html",
        "tidegate-report.json",
        "tidegate-report.junit.xml",
        "tidegate-report.sarif",
    ]
    document = json.loads((reports / "tidegate-report.json").read_text())
    assert document["verdict"]["status"] == "disallowed"
    bom = json.loads((reports / "tidegate-report.cdx.json").read_text())
    assert bom["bomFormat"] == "CycloneDX"
    assert any(v["id"] == "CVE-2021-23337" for v in bom["vulnerabilities"])


def test_sarif_validates_and_names_the_failed_control(reports: Path) -> None:
    log = json.loads((reports / "tidegate-report.sarif").read_text())
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    validator = jsonschema.Draft4Validator(
        schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    validator.validate(log)
    texts = json.dumps(log)
    assert "CVE-2021-23337" in texts
    assert "no-high" in texts


def test_junit_validates_with_a_case_per_control(reports: Path) -> None:
    text = (reports / "tidegate-report.junit.xml").read_text()
    xmlschema.XMLSchema(SCHEMAS / "JUnit.xsd").validate(text)
    root = ET.fromstring(text)
    cases = {
        (suite.get("name"), case.get("name")): case
        for suite in root.iter("testsuite")
        for case in suite.iter("testcase")
    }
    failure = cases[("policy: no-high", "severity")].find("failure")
    assert failure is not None
    assert "fix: upgrade lodash to 4.17.21" in (failure.text or "")


def _visible_text(dom: str) -> str:
    dom = re.sub(r"<style>.*?</style>", " ", dom, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", dom)
    return " ".join(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_html_report_in_headless_chromium(reports: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    page = reports / "tidegate-report.html"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        page.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    text = _visible_text(dom)
    assert "DISALLOWED" in text
    assert "severity — no-high" in text
    assert "How to fix: upgrade lodash to 4.17.21" in text
    assert text.index("DISALLOWED") < text.index("Failed controls")
