"""Every writer against its golden file, and what must hold for every format whatever the file.

Golden files are regenerated with `pytest tests/report --update-golden`, never edited by hand.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from report_results import AWS_KEY_ID, debian_result, minimal_result

from tidegate.core.models import EnvVar, ScanResult
from tidegate.report import ReportOptions, writers

GOLDEN = Path(__file__).parent / "golden"
RESULTS: dict[str, Callable[[], ScanResult]] = {"debian": debian_result, "minimal": minimal_result}
FORMATS = ["table", "json", "cyclonedx", "spdx", "sarif", "junit", "html"]


def _render(fmt: str, result: ScanResult, options: ReportOptions) -> str:
    out = io.StringIO()
    writers()[fmt].write(result, out, options)
    return out.getvalue()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", sorted(RESULTS))
def test_matches_golden(fmt: str, case: str, options: ReportOptions, update_golden: bool) -> None:
    text = _render(fmt, RESULTS[case](), options)
    golden = GOLDEN / f"{case}{writers()[fmt].file_extension}"
    if update_golden:
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"{golden} missing: run pytest tests/report --update-golden"
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", FORMATS)
def test_writing_twice_gives_the_same_bytes_without_injected_id(fmt: str) -> None:
    # No injected document id: it must still be derived, not random, and not read from the clock.
    options = ReportOptions(color=False, width=100, tool_version="0.0.0-test")
    first = _render(fmt, debian_result(), options)
    assert first == _render(fmt, debian_result(), options)


@pytest.mark.parametrize("fmt", ["json", "cyclonedx", "spdx", "sarif"])
def test_machine_formats_are_json(fmt: str, options: ReportOptions) -> None:
    json.loads(_render(fmt, debian_result(), options))


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_secret_value_reaches_any_output(fmt: str, options: ReportOptions) -> None:
    # An analyzer that flags a variable but forgets to redact it must not leak it through a report.
    raw = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    result = debian_result()
    leaky = EnvVar("AWS_SECRET_ACCESS_KEY", raw, looks_secret=True, rule_id="aws-secret")
    result = replace(result, facts=replace(result.facts, env=(leaky,)))
    text = _render(fmt, result, options)
    assert raw not in text
    assert AWS_KEY_ID not in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_package_order_does_not_depend_on_scan_order(fmt: str, options: ReportOptions) -> None:
    result = debian_result()
    shuffled = replace(
        result,
        catalogue=replace(result.catalogue, packages=tuple(reversed(result.catalogue.packages))),
        findings=tuple(reversed(result.findings)),
    )
    assert _render(fmt, result, options) == _render(fmt, shuffled, options)
