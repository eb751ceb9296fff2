"""The public API of tidegate.vulndb is exactly its `__all__`, and the default paths."""

from __future__ import annotations

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


def test_default_paths(tmp_path: Path) -> None:
    db = default_db_path(tmp_path)
    assert db == tmp_path / "vulndb" / "vulndb.sqlite"
    assert download_dir(db) == tmp_path / "vulndb" / "downloads"
