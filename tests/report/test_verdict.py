"""The gate's verdict in the JSON document (schema 1.1) and the table, and in every writer."""

from __future__ import annotations

import io
import json
from typing import Any

import jsonschema
import pytest
from report_results import debian_result
from report_verdicts import (
    FIX_VERSION,
    OPENSSL_KEY,
    POLICIES,
    REQUESTS_KEY,
    approved_verdict,
    disallowed_verdict,
)

from tidegate.core.policy import Verdict
from tidegate.report import ReportOptions, get_writer, writers
from tidegate.report.json_doc import ReportDocument, json_schema

OPTIONS = ReportOptions(color=False, width=160, tool_version="0.0.0-test", policies=POLICIES)


def _render(fmt: str, verdict: Verdict | None) -> str:
    out = io.StringIO()
    get_writer(fmt).write(debian_result(), out, OPTIONS, verdict)
    return out.getvalue()


def _json(verdict: Verdict | None) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_render("json", verdict))
    return loaded


@pytest.mark.parametrize("verdict", [disallowed_verdict(), approved_verdict(), None])
def test_json_with_verdict_validates_and_reads_back(verdict: Verdict | None) -> None:
    doc = _json(verdict)
    assert doc["schema_version"] == "1.1"
    jsonschema.Draft202012Validator(json_schema()).validate(doc)
    ReportDocument.model_validate_json(json.dumps(doc))


def test_json_verdict_section_carries_policies_failures_and_acknowledgements() -> None:
    verdict = _json(disallowed_verdict())["verdict"]
    assert verdict["status"] == "disallowed"
    assert verdict["reason"] == "disallowed by production baseline: severity, cve_denylist"
    baseline, hardening = verdict["policies"]
    assert (baseline["name"], baseline["mode"], baseline["passed"]) == (
        "production baseline",
        "enforce",
        False,
    )
    denylist = baseline["failures"][1]
    assert denylist == {
        "control": "cve_denylist",
        "message": "denied vulnerabilities present: CVE-2023-5678",
        "findings": [OPENSSL_KEY],
        "remediation": f"upgrade libssl3 to {FIX_VERSION}",
    }
    assert baseline["acknowledged"][0]["finding"] == REQUESTS_KEY
    assert baseline["acknowledged"][0]["ack_id"] == "ack-7"
    assert hardening["mode"] == "audit"


@pytest.mark.parametrize(
    ("path", "bad_value"),
    [
        (("verdict", "status"), "maybe"),
        (("verdict", "policies", 0, "mode"), "strict"),
        (("verdict", "policies", 0, "failures", 0, "findings"), "CVE-1"),
    ],
)
def test_schema_rejects_a_broken_verdict(path: tuple[str | int, ...], bad_value: Any) -> None:
    doc = _json(disallowed_verdict())
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad_value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json_schema())


def test_json_without_verdict_has_null_verdict() -> None:
    assert _json(None)["verdict"] is None


def test_table_shows_the_verdict_first_with_modes_and_failures() -> None:
    text = _render("table", disallowed_verdict())
    lines = text.splitlines()
    assert lines[0].split() == ["Verdict", "DISALLOWED"]
    assert text.index("Verdict") < text.index("Image ")
    policies = next(line for line in lines if line.strip().startswith("production baseline (v3)"))
    assert policies.split()[3:6] == ["enforce", "FAIL", "severity,"]
    assert any("hardening <audit>" in line and "audit" in line for line in lines)
    assert f"upgrade libssl3 to {FIX_VERSION}" in text


def test_table_approved_verdict_lists_no_failures() -> None:
    text = _render("table", approved_verdict())
    assert text.splitlines()[0].split() == ["Verdict", "APPROVED"]
    assert "Failed controls" not in [line.strip() for line in text.splitlines()]


def test_table_without_verdict_is_unchanged() -> None:
    out = io.StringIO()
    get_writer("table").write(debian_result(), out, OPTIONS)
    assert out.getvalue() == _render("table", None)
    assert "Verdict" not in out.getvalue()


@pytest.mark.parametrize("fmt", sorted(writers()))
def test_every_writer_accepts_a_verdict(fmt: str) -> None:
    assert _render(fmt, disallowed_verdict()).endswith("\n")
