"""Fixtures of the vulnerability database tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from vulndb_helpers import VULNDATA


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "vulndb.sqlite"


@pytest.fixture
def vulndata() -> Path:
    if not (VULNDATA / "osv").is_dir():
        pytest.skip(f"shared vulnerability data not present at {VULNDATA}")
    return VULNDATA.resolve()
