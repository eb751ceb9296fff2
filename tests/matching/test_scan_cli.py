"""`tidegate scan` of the real-data images through the command line, as a CI job runs it:
JSON findings, `--severity`, `--ignore-unfixed`, `--fail-on`, and `.tidegateignore.yaml`."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_real_findings import ALPINE_EXPECTED, DEBIAN_EXPECTED, Expected

from tidegate.core.models import FixState

pytestmark = pytest.mark.system


@dataclass(frozen=True, slots=True)
class Run:
    code: int
    doc: dict[str, Any] | None
    stderr: str

    @property
    def keys(self) -> set[tuple[str, str]]:
        assert self.doc is not None
        return {(f["package"]["name"], f["id"]) for f in self.doc["findings"]}


def tidegate(cwd: Path, *args: str | Path) -> Run:
    script = Path(sys.executable).with_name("tidegate")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "tidegate.cli.main"]
    proc = subprocess.run(
        [*cmd, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    doc = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None
    return Run(proc.returncode, doc, proc.stderr)


def scan(cwd: Path, layout: Path, db: Path, *extra: str) -> Run:
    return tidegate(cwd, "scan", f"oci:{layout}:1.0", "--db", db, "-f", "json", "-q", *extra)


def keys(rows: tuple[Expected, ...]) -> set[tuple[str, str]]:
    return {(w.package, w.id) for w in rows}


def test_json_findings_match_the_hand_made_table(
    tmp_path: Path, debian_layout: Path, alpine_layout: Path, real_db: Path
) -> None:
    for layout, expected in ((debian_layout, DEBIAN_EXPECTED), (alpine_layout, ALPINE_EXPECTED)):
        run = scan(tmp_path, layout, real_db)
        assert run.code == 0, run.stderr
        assert run.keys == keys(expected)
        assert run.doc is not None
        assert run.doc["db_snapshot"]
        by_key = {(f["package"]["name"], f["id"]): f for f in run.doc["findings"]}
        for want in expected:
            got = by_key[(want.package, want.id)]
            assert tuple(got["fixed_versions"]) == want.fixed
            assert got["status"] == want.status.value
            assert got["severity"] == want.severity.value


@pytest.mark.parametrize(
    ("severity", "wanted"),
    [
        ("critical", {("minimist", "CVE-2021-44906")}),
        ("high,critical", {("minimist", "CVE-2021-44906"), ("lodash", "CVE-2021-23337")}),
        ("negligible", {("tar", "CVE-2005-2541"), ("apt", "CVE-2011-3374")}),
    ],
)
def test_severity_filter(
    tmp_path: Path, debian_layout: Path, real_db: Path, severity: str, wanted: set[tuple[str, str]]
) -> None:
    run = scan(tmp_path, debian_layout, real_db, "--severity", severity)
    assert run.code == 0, run.stderr
    assert run.keys == wanted


def test_ignore_unfixed(tmp_path: Path, debian_layout: Path, real_db: Path) -> None:
    run = scan(tmp_path, debian_layout, real_db, "--ignore-unfixed")
    assert run.code == 0, run.stderr
    assert run.keys == keys(tuple(w for w in DEBIAN_EXPECTED if w.status is FixState.FIXED))
    assert ("libsystemd0", "CVE-2023-7008") not in run.keys  # fix-deferred is not fixed


@pytest.mark.parametrize(
    ("image", "fail_on", "code"),
    [
        ("debian", "high", 1),
        ("debian", "critical", 1),
        ("alpine", "high", 1),
        ("alpine", "critical", 0),
    ],
)
def test_fail_on(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    real_db: Path,
    image: str,
    fail_on: str,
    code: int,
) -> None:
    layout: Path = request.getfixturevalue(f"{image}_layout")
    run = scan(tmp_path, layout, real_db, "--fail-on", fail_on)
    assert run.code == code, run.stderr
    assert run.doc is not None, "the report is written even when the gate fails"
    assert ("--fail-on" in run.stderr) == (code == 1)


def test_fail_on_looks_at_shown_findings_only(
    tmp_path: Path, debian_layout: Path, real_db: Path
) -> None:
    run = scan(tmp_path, debian_layout, real_db, "--severity", "negligible", "--fail-on", "high")
    assert run.code == 0, run.stderr


IGNORE_CASES = [
    # (ignore file body, hidden findings)
    ("ignore:\n  - id: CVE-2021-44906\n    reason: test only\n", {("minimist", "CVE-2021-44906")}),
    # an alias (the GHSA id) covers the finding shown under its CVE
    ("ignore:\n  - id: GHSA-35jh-r3h4-6jhm\n", {("lodash", "CVE-2021-23337")}),
    # narrowed to one package: curl keeps its finding of the same CVE
    (
        "ignore:\n  - id: CVE-2023-38545\n    package: libcurl4\n",
        {("libcurl4", "CVE-2023-38545")},
    ),
    # a purl prefix and a future expiry
    (
        "ignore:\n  - id: CVE-2023-38545\n    purl: pkg:deb/debian/curl\n    expires: 2999-01-01\n",
        {("curl", "CVE-2023-38545")},
    ),
]


@pytest.mark.parametrize(("body", "hidden"), IGNORE_CASES)
def test_ignore_file_hides_its_finding(
    tmp_path: Path, debian_layout: Path, real_db: Path, body: str, hidden: set[tuple[str, str]]
) -> None:
    (tmp_path / ".tidegateignore.yaml").write_text(body)
    run = scan(tmp_path, debian_layout, real_db)
    assert run.code == 0, run.stderr
    assert run.keys == keys(DEBIAN_EXPECTED) - hidden
    assert f"{len(hidden)} finding(s) hidden by ignore rules" in run.stderr


def test_expired_ignore_entry_hides_nothing(
    tmp_path: Path, debian_layout: Path, real_db: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("ignore:\n  - id: CVE-2021-44906\n    expires: 2020-01-31\n")
    run = scan(tmp_path, debian_layout, real_db, "--ignorefile", rules, "--fail-on", "critical")
    assert run.code == 1, run.stderr
    assert ("minimist", "CVE-2021-44906") in run.keys
    assert "ignore rule for CVE-2021-44906 expired on 2020-01-31" in run.stderr
    assert "hidden by ignore rules" not in run.stderr


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("ignore:\n  - id: CVE-2021-44906\n  - package: lodash\n", "entry 2: `id` must be"),
        ("ignore:\n  - id: CVE-1\n    colour: red\n", "entry 1: unknown field(s) colour"),
        ("ignore:\n  - id: CVE-1\n    expires: next week\n", "entry 1: `expires` must be"),
        ("ignore: [unclosed\n", "not valid YAML"),
    ],
)
def test_malformed_ignore_file_is_a_usage_error(
    tmp_path: Path, debian_layout: Path, real_db: Path, body: str, message: str
) -> None:
    (tmp_path / ".tidegateignore.yaml").write_text(body)
    run = scan(tmp_path, debian_layout, real_db)
    assert run.code == 2
    assert ".tidegateignore.yaml" in run.stderr
    assert message in run.stderr
    assert run.doc is None
