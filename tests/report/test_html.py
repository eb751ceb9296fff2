"""The HTML report: self-contained, escaped, and readable in a real browser (headless Chromium)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from report_results import AWS_KEY_ID, debian_result, minimal_result
from report_verdicts import FIX_VERSION, POLICIES, approved_verdict, disallowed_verdict

from tidegate.core.models import ScanResult
from tidegate.core.policy import Verdict
from tidegate.report import ReportOptions, get_writer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OPTIONS = ReportOptions(tool_version="0.0.0-test", policies=POLICIES)


def _html(result: ScanResult, verdict: Verdict | None) -> str:
    out = io.StringIO()
    get_writer("html").write(result, out, OPTIONS, verdict)
    return out.getvalue()


def _chromium(page: Path, tmp_path: Path, *args: str) -> str:
    assert CHROMIUM is not None
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
        *args,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def _text(dom: str) -> str:
    """Visible text of a dumped DOM, blanks collapsed (style content removed)."""
    dom = re.sub(r"<style>.*?</style>", " ", dom, flags=re.S)
    return " ".join(
        re.sub(r"<[^>]+>", " ", dom)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .split()
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_rendered_report_shows_verdict_failed_control_and_fix(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(_html(debian_result(), disallowed_verdict()), encoding="utf-8")
    text = _text(_chromium(page, tmp_path, "--dump-dom"))
    assert "DISALLOWED" in text
    assert "disallowed by production baseline: severity, cve_denylist" in text
    assert "cve_denylist — production baseline" in text
    assert f"How to fix: upgrade libssl3 to {FIX_VERSION}" in text
    assert "hardening <audit>" in text  # escaped in the source, shown as written
    # The verdict comes before the findings tables.
    assert (
        text.index("DISALLOWED") < text.index("Failed controls") < text.index("Vulnerabilities (3)")
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_to_a_screenshot(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(_html(debian_result(), disallowed_verdict()), encoding="utf-8")
    shot = tmp_path / "report.png"
    _chromium(page, tmp_path, "--window-size=1200,1600", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a blank page compresses to a few kB


@pytest.mark.parametrize(
    ("verdict", "banner"),
    [(disallowed_verdict(), "DISALLOWED"), (approved_verdict(), "APPROVED"), (None, "NO VERDICT")],
)
def test_banner_states_the_verdict(verdict: Verdict | None, banner: str) -> None:
    html = _html(debian_result(), verdict)
    assert f'<div class="status">{banner}</div>' in html


def test_self_contained_nothing_to_fetch() -> None:
    html = _html(debian_result(), disallowed_verdict())
    assert "default-src 'none'" in html
    assert not re.search(r"<(script|link|img|iframe)\b", html)
    assert "src=" not in html


def test_hostile_text_is_escaped() -> None:
    result = debian_result()
    evil = "<script>alert(1)</script>"
    package = replace(result.findings[0].package, name=evil)
    finding = replace(result.findings[0], package=package, summary=evil)
    html = _html(replace(result, findings=(finding,)), disallowed_verdict())
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_secrets_by_location_never_value() -> None:
    html = _html(debian_result(), None)
    assert "/app/config/settings.ini" in html
    assert "AKIA****************" in html
    assert AWS_KEY_ID not in html


def test_empty_scan_still_renders_every_section() -> None:
    html = _html(minimal_result(), None)
    for section in ("verdict", "vulnerabilities", "packages", "secrets", "unknowns"):
        assert f'id="{section}"' in html
