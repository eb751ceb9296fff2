"""The public API of tidegate.vulndb is exactly its `__all__`, and the default paths."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import tidegate.vulndb as vulndb
from tidegate.vulndb import default_db_path, download_dir


def test_all_is_the_public_api() -> None:
    public = {
        name
        for name, value in vars(vulndb).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(vulndb.__all__)
    assert len(set(vulndb.__all__)) == len(vulndb.__all__)
    assert callable(vulndb.update)  # the function, not the submodule of the same name


def test_reading_the_store_loads_no_feed_or_download_libraries() -> None:
    """Matching (a scan, a scanner worker) imports neither an HTTP client nor YAML nor CVSS:
    those load when a feed is parsed or downloaded."""
    code = (
        "import sys, tidegate.vulndb, tidegate.core.matching.matcher; "
        "print(sorted(m for m in ('httpx', 'yaml', 'cvss', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_default_paths(tmp_path: Path) -> None:
    db = default_db_path(tmp_path)
    assert db == tmp_path / "vulndb" / "vulndb.sqlite"
    assert download_dir(db) == tmp_path / "vulndb" / "downloads"
