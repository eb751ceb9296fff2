"""Fixtures of the analyzer tests.

`debootstrap_bookworm` builds a real Debian 12 root filesystem once and caches it across runs;
it does not depend on anything analyzer-specific, so it can move to tests/conftest.py as is when
other test folders (scan, image) need it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

DEBOOTSTRAP_CACHE = Path(
    os.environ.get("TIDEGATE_TEST_CACHE", Path.home() / ".cache" / "tidegate-tests")
)
_COMPLETE = ".tidegate-complete"
"""Marker written after debootstrap succeeded: a half-built cache is never reused."""


@pytest.fixture(scope="session")
def debootstrap_bookworm() -> Path:
    """A `debootstrap --variant=minbase bookworm` root filesystem (built once, ~40-60 s).

    Cached in ~/.cache/tidegate-tests/debootstrap-bookworm (or $TIDEGATE_TEST_CACHE) and reused
    while its completion marker exists. Skips when debootstrap is missing or we are not root.
    """
    target = DEBOOTSTRAP_CACHE / "debootstrap-bookworm"
    if (target / _COMPLETE).exists():
        return target
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed")
    if os.geteuid() != 0:
        pytest.skip("debootstrap needs root")
    DEBOOTSTRAP_CACHE.mkdir(parents=True, exist_ok=True)
    work = DEBOOTSTRAP_CACHE / f"debootstrap-bookworm.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(work)],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(work, ignore_errors=True)
        pytest.fail(f"debootstrap failed: {exc.stderr.decode(errors='replace')[-2000:]}")
    (work / _COMPLETE).touch()
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target
