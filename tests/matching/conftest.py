"""Fixtures of the real-data matching tests: a vulnerability DB imported from the real records in
../shared/vulndata, and real images (umoci + busybox-static) whose package databases hold
versions chosen from those records.

- `real_db`: path of a SQLite DB built by `tidegate.vulndb.import_paths` from osv/*,
  derived/osv/*, derived/osv-json-from-pypa-yaml and raw-bulk (skips when vulndata is absent).
- `debian_layout` / `alpine_layout`: OCI layouts (tag "1.0") of the two images whose content is
  in `images_data.py`, built once and cached like tests/helpers/images.py's busybox image.
"""

from __future__ import annotations

from pathlib import Path

import matching_data as images_data
import pytest

from helpers import images
from tidegate.vulndb import import_paths

VULNDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "vulndata"
IMPORTED = (
    "osv",
    "derived/osv",
    "derived/osv-json-from-pypa-yaml",
    "raw-bulk",
)


@pytest.fixture(scope="session")
def vulndata() -> Path:
    if not (VULNDATA / "derived" / "osv" / "Debian").is_dir():
        pytest.skip(f"real vulnerability data not found at {VULNDATA.resolve()}")
    return VULNDATA.resolve()


@pytest.fixture(scope="session")
def real_db(vulndata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("realdb") / "vulns.db"
    report = import_paths(db, [vulndata / p for p in IMPORTED], strict=True)
    assert report.errors == ()
    assert report.imported > 1000
    return db


def _need_tools() -> None:
    missing = images.missing_tools(*images.TOOLS)
    if missing:
        pytest.skip(f"system tools missing: {', '.join(missing)}")


def _layout(name: str, files: dict[str, bytes]) -> Path:
    _need_tools()

    def build(out: Path) -> None:
        images_data.build_layout(out / "layout", files)

    return images.cached(f"{name}-{images_data.BUILD_VERSION}", build) / "layout"


@pytest.fixture(scope="session")
def debian_layout() -> Path:
    return _layout("matching-debian12", images_data.debian_files())


@pytest.fixture(scope="session")
def alpine_layout() -> Path:
    return _layout("matching-alpine318", images_data.alpine_files())
