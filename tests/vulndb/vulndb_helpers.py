"""Paths and constants shared by the vulnerability database tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
VULNDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "vulndata"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
