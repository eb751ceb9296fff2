"""Fixtures of the report tests and the --update-golden option that rewrites their golden files."""

from __future__ import annotations

import pytest
from report_results import FIXED_ID, debian_result, minimal_result

from tidegate.core.models import ScanResult
from tidegate.report.interface import ReportOptions


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/report/golden/* from the current writers instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def debian() -> ScanResult:
    return debian_result()


@pytest.fixture
def minimal() -> ScanResult:
    return minimal_result()


@pytest.fixture
def options() -> ReportOptions:
    """Options that make every document deterministic: fixed id and version, no colour."""
    return ReportOptions(color=False, width=100, document_id=FIXED_ID, tool_version="0.0.0-test")
