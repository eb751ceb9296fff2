"""Session fixtures shared by every test folder: real images and real registries.

- `busybox_layout`: path of a cached OCI layout built with umoci + busybox-static (tags "1.0",
  "arm64" and the two-platform index "multi"; see tests/helpers/images.py for its exact content).
- `image_archives`: {"oci-archive": path, "docker-archive": path} of the same image, by skopeo.
- `registry`: a `Registry` (host "127.0.0.1:PORT", anonymous) with the image pushed as
  "busybox:1.0" and the index as "busybox:multi".
- `auth_registry`: a `Registry` with htpasswd auth (user "tidegate", password in `.password`),
  the image pushed as "private/busybox:1.0".
- `push_image`: `push_image(source, registry, "repo:tag", all_platforms=False) -> "host/repo:tag"`.
- `debootstrap_bookworm`: a real `debootstrap --variant=minbase bookworm` root filesystem, built
  once and cached across runs (~40-60 s the first time).

`--update-golden` rewrites golden files (tests/report/golden) instead of comparing with them.

Registries are `docker-registry serve` processes listening on 127.0.0.1 only, storing into the
session's tmp dir, and killed when the session ends. Fixtures skip (with the tool's name) only when
a system tool is missing; CI installs them all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import images


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files (tests/report/golden/*) from the current code",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def _need(*tools: str) -> None:
    missing = images.missing_tools(*tools)
    if missing:
        pytest.skip(f"system tools missing: {', '.join(missing)}")


@pytest.fixture(scope="session")
def busybox_layout() -> Path:
    _need(*images.TOOLS)
    return images.busybox_layout()


@pytest.fixture(scope="session")
def image_archives(busybox_layout: Path) -> dict[str, Path]:
    return images.build_archives(busybox_layout)


def _serve(
    tmp_path_factory: pytest.TempPathFactory, name: str, htpasswd: tuple[str, str] | None
) -> Iterator[images.Registry]:
    _need("docker-registry", *(("htpasswd",) if htpasswd else ()))
    proc, registry = images.start_registry(tmp_path_factory.mktemp(name), htpasswd=htpasswd)
    try:
        yield registry
    finally:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def registry(
    tmp_path_factory: pytest.TempPathFactory, busybox_layout: Path
) -> Iterator[images.Registry]:
    for reg in _serve(tmp_path_factory, "registry", None):
        reg.push(f"oci:{busybox_layout}:{images.TAG}", f"busybox:{images.TAG}")
        reg.push(f"oci:{busybox_layout}:{images.MULTI_TAG}", "busybox:multi", all_platforms=True)
        yield reg


@pytest.fixture(scope="session")
def auth_registry(
    tmp_path_factory: pytest.TempPathFactory, busybox_layout: Path
) -> Iterator[images.Registry]:
    for reg in _serve(tmp_path_factory, "auth-registry", ("tidegate", "s3cret-pass")):
        reg.push(f"oci:{busybox_layout}:{images.TAG}", f"private/busybox:{images.TAG}")
        yield reg


@pytest.fixture(scope="session")
def push_image() -> Callable[..., str]:
    def push(
        source: str, registry: images.Registry, repo_tag: str, *, all_platforms: bool = False
    ) -> str:
        return registry.push(source, repo_tag, all_platforms=all_platforms)

    return push


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
