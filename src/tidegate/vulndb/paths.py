"""Where the vulnerability database lives on disk, given the data directory the caller chose.

The CLI passes platformdirs' user data dir; the console and scanners pass their configured one.
"""

from __future__ import annotations

from pathlib import Path

DB_FILENAME = "vulndb.sqlite"


def default_db_path(data_dir: Path) -> Path:
    """The database file under a data directory: `<data_dir>/vulndb/vulndb.sqlite`."""
    return Path(data_dir) / "vulndb" / DB_FILENAME


def download_dir(db_path: Path) -> Path:
    """Where `db update` keeps archives (and `.part` files of interrupted downloads)."""
    return Path(db_path).parent / "downloads"
