"""Fixtures of the report tests (the --update-golden option lives in tests/conftest.py)."""

from __future__ import annotations

import pytest
from report_results import FIXED_ID, debian_result, minimal_result

from tidegate.core.models import ScanResult
from tidegate.report.interface import ReportOptions


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
