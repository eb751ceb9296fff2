"""The human table: what it shows, and that it stays plain text off a terminal."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from report_results import debian_result, minimal_result

from tidegate.core.models import ScanResult
from tidegate.report import ReportOptions, get_writer

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal, as a user's shell would."""

    def isatty(self) -> bool:
        return True


def _table(result: ScanResult, options: ReportOptions, out: io.StringIO | None = None) -> str:
    out = out if out is not None else io.StringIO()
    get_writer("table").write(result, out, options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("color", "stream", "colored"),
    [
        (None, io.StringIO, False),
        (None, FakeTerminal, True),
        (False, FakeTerminal, False),
        (True, io.StringIO, True),
    ],
)
def test_color_only_on_a_terminal_or_when_forced(
    color: bool | None, stream: type[io.StringIO], colored: bool
) -> None:
    text = _table(debian_result(), ReportOptions(color=color, width=100), stream())
    assert bool(ANSI.search(text)) is colored


@pytest.mark.parametrize("width", [80, 100, 120])
def test_lines_fit_the_width_and_carry_no_trailing_blanks(width: int) -> None:
    text = _table(debian_result(), ReportOptions(color=False, width=width))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert all(line == line.rstrip() for line in lines)


def test_summary_and_findings() -> None:
    text = _table(debian_result(), ReportOptions(color=False, width=100))
    assert "registry.example.com/shop/api:1.4.2" in text
    assert "sha256:" + "d" * 64 in text
    assert "Debian GNU/Linux 12 (bookworm)" in text
    assert "5 (deb 4, pypi 1)" in text
    assert "3 (critical 1, medium 1, unknown 1)" in text
    rows = [line.split() for line in text.splitlines()]
    assert [
        "CVE-2023-5678",
        "libssl3",
        "3.0.11-1~deb12u1",
        "3.0.11-1~deb12u2",
        "fixed",
        "medium",
    ] in rows
    assert ["CVE-2023-45853", "zlib1g", "1:1.2.13.dfsg-1", "wont-fix", "critical"] in rows
    # Most severe first.
    assert text.index("CVE-2023-45853") < text.index("CVE-2023-5678") < text.index("GHSA-j8r2")
    assert "AWS Access Key ID" in text
    assert "AKIA****************" in text
    assert "not a valid core metadata file" in text


def test_packages_listed_when_there_are_no_findings() -> None:
    text = _table(replace(debian_result(), findings=()), ReportOptions(color=False, width=100))
    assert "Vulnerabilities" not in text
    assert "Packages" in {line.strip() for line in text.splitlines()}
    rows = [line.split() for line in text.splitlines()]
    assert ["libssl3", "3.0.11-1~deb12u1", "deb", "openssl"] in rows
    assert ["zlib1g", "1:1.2.13.dfsg-1", "deb", "zlib", "1.2.13.dfsg-1"] in rows


def test_empty_rootfs_says_so_without_empty_tables() -> None:
    text = _table(minimal_result(), ReportOptions(color=False, width=100))
    assert "dir:/tmp/rootfs" in text
    assert "(root by default), unresolved" in text
    titles = {"Vulnerabilities", "Packages", "Secrets", "Unknowns (not analysed)"}
    assert not titles & {line.strip() for line in text.splitlines()}
