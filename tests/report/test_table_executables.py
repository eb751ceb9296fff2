"""`tidegate scan --executables`: the table lists the executable inventory only when asked."""

from __future__ import annotations

import io

import pytest
from report_results import debian_result

from tidegate.report.interface import ReportOptions
from tidegate.report.table import TableWriter


@pytest.mark.parametrize("include", [True, False])
def test_executables_section_follows_the_option(include: bool) -> None:
    out = io.StringIO()
    options = ReportOptions(color=False, width=100, include_executables=include)
    TableWriter().write(debian_result(), out, options)
    text = out.getvalue()
    assert ("Executables" in text) is include
    assert ("/usr/bin/su" in text) is include
    assert ("setuid" in text) is include
