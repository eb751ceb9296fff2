"""Small real images with distinct digests: the busybox test image plus one layer holding a file
that names the variant (`umoci raw add-layer`), tags v0..vN-1 in one OCI layout. Tests and
bench/ingest_bench.py push them with skopeo to a real registry."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from helpers import images

VARIANT_FILE = "/etc/tidegate-variant"


def _variant_layer(path: Path, content: bytes) -> None:
    # A tar written here, not by `umoci insert`: umoci 0.4.7 writes a single small file's layer
    # without the tar padding and end blocks (a truncated archive, which scanners refuse).
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(VARIANT_FILE.lstrip("/"))
        info.size, info.mode, info.mtime = len(content), 0o644, 1_700_000_000
        tar.addfile(info, io.BytesIO(content))


def build_variants(out: Path, count: int, base_layout: Path) -> Path:
    """Write an OCI layout at out/layout with tags v0..v{count-1}; returns the layout path."""
    layout = out / "layout"
    shutil.copytree(base_layout, layout)
    with tempfile.TemporaryDirectory(prefix="tidegate-variant-") as tmp:
        for n in range(count):
            layer = Path(tmp) / f"variant-{n}.tar"
            _variant_layer(layer, f"variant {n}\n".encode())
            subprocess.run(
                ["umoci", "raw", "add-layer", "--image", f"{layout}:{images.TAG}",
                 "--tag", f"v{n}", str(layer)],
                check=True, capture_output=True,
            )  # fmt: skip
    return layout


def variants(count: int) -> Path:
    """The cached layout of `count` variants (tests' cache dir, built once)."""
    base = images.busybox_layout()

    def build(out: Path) -> None:
        build_variants(out, count, base)

    return images.cached(f"jobs-variants-{count}-v2", build) / "layout"
