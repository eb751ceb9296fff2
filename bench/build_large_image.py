"""Build (once, cached) the large benchmark image: a multi-layer OCI image of real Debian packages.

The image is `debootstrap --variant=minbase bookworm` as its first layer, then one layer per group
of real packages installed with apt-get in a chroot (a C/C++ toolchain, scripting runtimes, LLVM and
a Java runtime): over 500 MB uncompressed, gzip-compressed layers, tagged `large` in an OCI layout.
Layers are produced by `umoci repack`, so the later layers are true diffs (with whiteouts where apt
removed files) exactly as a container build would make them.

The result lives under ~/.cache/tidegate-bench/large-image (or `--cache-dir`). It is built in a
temporary directory next to it and renamed into place only when complete, so an interrupted build
is never reused. Only this build reaches the network (deb.debian.org, the Debian package registry).

Run: `.venv/bin/python bench/build_large_image.py [--cache-dir DIR] [--rebuild]`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
TAG = "large"
IMAGE_DIR_NAME = "large-image"
INFO_NAME = "info.json"
BUILD_FORMAT = 3
"""Bump when the recipe below changes, so cached images of an older recipe are rebuilt."""

PACKAGE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("toolchain", ("gcc-12", "g++-12", "make", "binutils", "libc6-dev")),
    ("runtimes", ("python3", "python3-pip", "perl", "git", "curl")),
    ("llvm-java", ("libllvm15", "openjdk-17-jre-headless")),
)
"""One image layer per group, on top of the minbase layer (chosen for size: about 1 GB)."""

MIN_UNCOMPRESSED = 500 * 1024**2


def default_cache_dir() -> Path:
    """~/.cache/tidegate-bench, or $TIDEGATE_BENCH_CACHE."""
    env = os.environ.get("TIDEGATE_BENCH_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tidegate-bench"


@dataclass(frozen=True, slots=True)
class ImageStats:
    """What the benchmark image is made of (stored next to it as info.json)."""

    layout: str
    """The OCI layout directory."""
    tag: str
    reference: str
    """`oci:LAYOUT:TAG`, the reference Tidegate scans."""
    layers: int
    compressed_bytes: int
    """Sum of the gzip layer blobs."""
    uncompressed_bytes: int
    """Sum of the layers' tar streams."""
    packages: int
    """dpkg packages installed in the final root filesystem."""
    executables: int
    """Regular files with an execute bit in the final root filesystem."""
    files: int
    """Regular files in the final root filesystem."""
    build_format: int = BUILD_FORMAT


def run(cmd: Sequence[str], *, env: dict[str, str] | None = None) -> None:
    """Run a build step, echoing it; a failure stops the build with the command named."""
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(list(cmd), check=True, env=env)


def require_tools(names: Sequence[str]) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise SystemExit(
            f"build_large_image: missing tools {', '.join(missing)} "
            "(apt-get install debootstrap umoci; run as root)"
        )


def _mounted_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts]
    return [p for p in points if p.startswith(prefix)]


@contextmanager
def chroot_mounts(rootfs: Path, debs: Path) -> Iterator[None]:
    """/proc, /dev and the deb cache mounted in the chroot while apt runs.

    Java's postinst needs /proc. The debs land in `debs` outside the image, so they are not in
    a layer and a rebuild does not download them again.
    """
    mounted: list[Path] = []
    try:
        for target, args in (
            (rootfs / "proc", ["-t", "proc", "proc"]),
            (rootfs / "dev", ["--bind", "/dev"]),
            (rootfs / "var/cache/apt/archives", ["--bind", str(debs)]),
        ):
            target.mkdir(parents=True, exist_ok=True)
            run(["mount", *args, str(target)])
            mounted.append(target)
        yield
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", "-l", str(target)], check=False)


def _chroot_env() -> dict[str, str]:
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LC_ALL": "C.UTF-8",
        "HOME": "/root",
    }


def install_group(rootfs: Path, packages: Sequence[str], debs: Path) -> None:
    """apt-get install one group into the chroot and leave no apt lists or downloaded debs."""
    shutil.copyfile("/etc/resolv.conf", rootfs / "etc/resolv.conf")
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")  # no services start inside the build chroot
    policy.chmod(0o755)
    env = _chroot_env()
    apt = ["chroot", str(rootfs), "apt-get", "-q", "-y", "-o", "Dpkg::Use-Pty=0"]
    (debs / "apt").mkdir(parents=True, exist_ok=True)
    with chroot_mounts(rootfs, debs / "apt"):
        run([*apt, "update"], env=env)
        run([*apt, "install", "--no-install-recommends", *packages], env=env)
    policy.unlink()
    clean_apt(rootfs)


def clean_apt(rootfs: Path) -> None:
    """Drop apt's lists and binary caches, as image builds do.

    Not `apt-get clean`: that would also empty the bind-mounted deb cache.
    """
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    for cache in (rootfs / "var/cache/apt").glob("*.bin"):
        cache.unlink()


def repack(layout: Path, bundle: Path, created_by: str) -> None:
    run(
        [
            "umoci", "repack", "--refresh-bundle",
            "--history.created_by", created_by,
            "--image", f"{layout}:{TAG}", str(bundle),
        ]
    )  # fmt: skip


def build_layout(work: Path, debs: Path) -> Path:
    """Build the layered image in `work`; returns the bundle whose rootfs is the final image."""
    layout = work / "layout"
    bundle = work / "bundle"
    run(["umoci", "init", "--layout", str(layout)])
    run(["umoci", "new", "--image", f"{layout}:{TAG}"])
    run(["umoci", "unpack", "--image", f"{layout}:{TAG}", str(bundle)])
    rootfs = bundle / "rootfs"
    debs.mkdir(parents=True, exist_ok=True)
    run(
        [
            "debootstrap", "--variant=minbase", f"--cache-dir={debs}",
            SUITE, str(rootfs), MIRROR,
        ]
    )  # fmt: skip
    clean_apt(rootfs)
    repack(layout, bundle, f"debootstrap --variant=minbase {SUITE}")
    for name, packages in PACKAGE_GROUPS:
        install_group(rootfs, packages, debs)
        repack(layout, bundle, f"apt-get install {' '.join(packages)}  # {name}")
    run(
        [
            "umoci", "config", "--image", f"{layout}:{TAG}",
            "--config.cmd", "/bin/bash", "--config.env", "LANG=C.UTF-8",
            "--config.label", "org.opencontainers.image.title=tidegate-bench-large",
        ]
    )  # fmt: skip
    run(["umoci", "gc", "--layout", str(layout)])
    return bundle


def layer_blobs(layout: Path, tag: str = TAG) -> list[Path]:
    """The layer blobs of `tag` in an OCI layout, bottom first."""
    index = json.loads((layout / "index.json").read_text())
    for desc in index["manifests"]:
        if desc.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            manifest = json.loads(_blob(layout, desc["digest"]).read_text())
            return [_blob(layout, layer["digest"]) for layer in manifest["layers"]]
    raise SystemExit(f"build_large_image: tag {tag!r} not found in {layout}/index.json")


def _blob(layout: Path, digest: str) -> Path:
    algo, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algo / hexdigest


def uncompressed_size(blob: Path) -> int:
    total = 0
    with gzip.open(blob, "rb") as stream:
        while chunk := stream.read(1 << 20):
            total += len(chunk)
    return total


def count_files(rootfs: Path) -> tuple[int, int]:
    """(regular files, regular files with an execute bit) under `rootfs`, not following links."""
    files = executables = 0
    for dirpath, _dirs, names in os.walk(rootfs):
        for name in names:
            mode = os.lstat(os.path.join(dirpath, name)).st_mode
            if stat.S_ISREG(mode):
                files += 1
                executables += bool(mode & 0o111)
    return files, executables


def count_packages(rootfs: Path) -> int:
    out = subprocess.run(
        ["dpkg-query", f"--admindir={rootfs}/var/lib/dpkg", "-W", "-f", "${db:Status-Abbrev}\\n"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sum(1 for line in out.splitlines() if line.startswith("ii"))


def measure(layout: Path, rootfs: Path, final_layout: Path) -> ImageStats:
    blobs = layer_blobs(layout)
    files, executables = count_files(rootfs)
    return ImageStats(
        layout=str(final_layout),
        tag=TAG,
        reference=f"oci:{final_layout}:{TAG}",
        layers=len(blobs),
        compressed_bytes=sum(b.stat().st_size for b in blobs),
        uncompressed_bytes=sum(uncompressed_size(b) for b in blobs),
        packages=count_packages(rootfs),
        executables=executables,
        files=files,
    )


def load_stats(cache_dir: Path) -> ImageStats | None:
    """The stats of a complete cached image of the current recipe, or None."""
    info = cache_dir / IMAGE_DIR_NAME / INFO_NAME
    try:
        data = json.loads(info.read_text())
        stats = ImageStats(**data)
    except (OSError, ValueError, TypeError):
        return None
    if stats.build_format != BUILD_FORMAT or not Path(stats.layout, "index.json").is_file():
        return None
    return stats


def _remove_build_dir(work: Path) -> None:
    # Never rm -rf through a still-mounted /dev or /proc of an aborted chroot.
    left = _mounted_under(work)
    for point in sorted(left, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    if _mounted_under(work):
        print(f"build_large_image: {work} still has mounts; leaving it", file=sys.stderr)
        return
    shutil.rmtree(work, ignore_errors=True)


def build(cache_dir: Path) -> ImageStats:
    """Build the image into a temporary directory and move it into place when complete."""
    require_tools(["debootstrap", "umoci", "chroot", "mount", "dpkg-query"])
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / IMAGE_DIR_NAME
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_dir))
    try:
        started = time.monotonic()
        bundle = build_layout(work, cache_dir / "debs")
        out = work / IMAGE_DIR_NAME
        out.mkdir()
        (work / "layout").rename(out / "layout")
        stats = measure(out / "layout", bundle / "rootfs", final / "layout")
        if stats.uncompressed_bytes < MIN_UNCOMPRESSED:
            raise SystemExit(
                f"build_large_image: image is only {stats.uncompressed_bytes} bytes uncompressed"
            )
        (out / INFO_NAME).write_text(json.dumps(asdict(stats), indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        out.rename(final)
        print(f"built in {time.monotonic() - started:.0f} s", file=sys.stderr)
        return stats
    finally:
        _remove_build_dir(work)


def ensure_image(cache_dir: Path | None = None, *, rebuild: bool = False) -> ImageStats:
    """The cached benchmark image, built first if missing, incomplete or of an older recipe."""
    root = cache_dir or default_cache_dir()
    stats = None if rebuild else load_stats(root)
    return stats if stats is not None else build(root)


def describe(stats: ImageStats) -> str:
    mib = 1024**2
    return (
        f"image {stats.reference}\n"
        f"  layers        {stats.layers}\n"
        f"  uncompressed  {stats.uncompressed_bytes / mib:,.0f} MiB\n"
        f"  compressed    {stats.compressed_bytes / mib:,.0f} MiB (gzip)\n"
        f"  packages      {stats.packages} (dpkg)\n"
        f"  executables   {stats.executables} of {stats.files} regular files"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--rebuild", action="store_true", help="build even if one is cached")
    parser.add_argument("--json", action="store_true", help="print the stats as JSON")
    args = parser.parse_args(argv)
    stats = ensure_image(args.cache_dir, rebuild=args.rebuild)
    print(json.dumps(asdict(stats), indent=2) if args.json else describe(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
