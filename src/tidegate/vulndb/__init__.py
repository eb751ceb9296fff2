"""The vulnerability database: OSV feeds in, a local SQLite snapshot out, lookups for matching.

osv.py       OSV records (JSON/YAML, schema 1.0-1.7) -> core.advisory.Advisory, with ratings
aliases.py   alias groups (CVE <-> GHSA <-> PYSEC <-> DEBIAN-CVE ...)
store.py     the SQLite file: read API (VulnStore) and atomic builds
importer.py  `db import`: files, directories, zips
update.py    `db update`: osv.dev all.zip archives, resumable and verified
progress.py  the progress protocol the CLI draws
paths.py     where the database lives under a data directory
"""

from tidegate.vulndb.aliases import compute_groups
from tidegate.vulndb.importer import ImportProblem, ImportReport, import_paths
from tidegate.vulndb.osv import load_document, parse_record
from tidegate.vulndb.paths import default_db_path, download_dir
from tidegate.vulndb.progress import NullProgress, Progress
from tidegate.vulndb.store import (
    SourceStatus,
    StoreStatus,
    VulnStore,
    ecosystem_family,
    normalize_name,
)
from tidegate.vulndb.update import (
    DEFAULT_ECOSYSTEMS,
    OSV_BASE_URL,
    EcosystemUpdate,
    UpdateReport,
    update,
)

__all__ = [
    "DEFAULT_ECOSYSTEMS",
    "OSV_BASE_URL",
    "EcosystemUpdate",
    "ImportProblem",
    "ImportReport",
    "NullProgress",
    "Progress",
    "SourceStatus",
    "StoreStatus",
    "UpdateReport",
    "VulnStore",
    "compute_groups",
    "default_db_path",
    "download_dir",
    "ecosystem_family",
    "import_paths",
    "load_document",
    "normalize_name",
    "parse_record",
    "update",
]
