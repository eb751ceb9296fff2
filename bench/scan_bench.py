"""The scan benchmark: scanning the large image, against simply decompressing its layers.

In one run, on the large image of `build_large_image.py` (or `--image oci:LAYOUT:TAG`):

- baseline: `zcat LAYERS > /dev/null` (wall time), with Python's `gzip` and `isal.igzip` for
  reference;
- cold scan: `tidegate.scan.scan_image` in a fresh Python process with no layer cache;
- warm re-scan: the same in a fresh process with a layer cache filled by an earlier scan (the scan
  call itself, and the whole process including interpreter start and imports);
- peak memory: the maximum resident set of each scanning process (`wait4` rusage of that child).

Every measurement is repeated `--repeat` times (default 3); the median is reported, as ratios to
the baseline and against the targets (cold <= 1.5 x zcat, warm < 0.5 s, peak < 300 MB). The page
cache is warmed first so every figure reads the blobs from memory. No network is used once the
image exists. `main(argv)` returns 0 when it measured, whether or not the targets are met;
`--check` makes a missed target exit 1.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import build_large_image  # noqa: E402  (a sibling script, importable once BENCH_DIR is on the path)

NAME = "scan"
COLD_RATIO_TARGET = 1.5
WARM_SECONDS_TARGET = 0.5
PEAK_BYTES_TARGET = 300 * 1000**2
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ChildRun:
    """One scanning process: what it reported about itself and what the parent saw of it."""

    process_seconds: float
    """Wall time of the whole process, from spawn to exit (seen by the parent)."""
    scan_seconds: float
    """Wall time of open_image + scan_image inside the process."""
    import_seconds: float
    """Time to import tidegate inside the process."""
    peak_rss_bytes: int
    """Maximum resident set size of the process (ru_maxrss from wait4)."""
    packages: int
    executables: int
    unknowns: int
    layers: int


@dataclass(frozen=True, slots=True)
class Figure:
    """One reported figure: the median of its samples, with the samples kept for the record."""

    name: str
    unit: str
    median: float
    samples: tuple[float, ...]
    target: str = ""
    """The target in words, empty if the figure has none."""
    met: bool | None = None
    """Whether the target is met; None when the figure has no target."""


@dataclass(frozen=True, slots=True)
class Result:
    """Everything one run of the benchmark reports (also its --json document)."""

    benchmark: str
    image: dict[str, Any]
    repeat: int
    figures: tuple[Figure, ...]
    catalogue: dict[str, int] = field(default_factory=dict)
    """What the scan found (packages, executables, unknowns): a scan that finds nothing is fast."""


# -- the child: one scan in a fresh interpreter ------------------------------------------------


def child_main(reference: str, cache_dir: str | None, result_file: str) -> int:
    """Scan `reference` once and write what happened to `result_file` as JSON."""
    t0 = time.perf_counter()
    from tidegate.image import SourceOptions, open_image
    from tidegate.scan import LayerCache, scan_image

    t1 = time.perf_counter()
    cache = LayerCache(Path(cache_dir)) if cache_dir else None
    source = open_image(reference, SourceOptions())
    try:
        result = scan_image(source, cache=cache)
    finally:
        source.close()
    t2 = time.perf_counter()
    report = {
        "import_seconds": t1 - t0,
        "scan_seconds": t2 - t1,
        "packages": len(result.catalogue.packages),
        "executables": len(result.catalogue.executables),
        "unknowns": len(result.catalogue.unknowns),
        "layers": len(result.image.layers),
    }
    Path(result_file).write_text(json.dumps(report))
    return 0


def run_child(reference: str, cache_dir: Path | None, log: Path) -> ChildRun:
    """Run one scan in a fresh process; its peak RSS comes from wait4 on exactly that child."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        result_file = Path(tmp.name)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", reference, str(result_file)]
    if cache_dir is not None:
        cmd += ["--child-cache", str(cache_dir)]
    try:
        with open(log, "ab") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"scan of {reference} failed (exit {proc.returncode}); see {log}")
        data = json.loads(result_file.read_text())
    finally:
        result_file.unlink(missing_ok=True)
    return ChildRun(
        process_seconds=elapsed,
        peak_rss_bytes=usage.ru_maxrss * 1024,  # Linux reports kibibytes
        **data,
    )


# -- the baseline ------------------------------------------------------------------------------


def zcat_seconds(blobs: Sequence[Path]) -> float:
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(["zcat", *map(str, blobs)], stdout=sink, check=True)
    return time.perf_counter() - started


def _drain(opener: Callable[[Path], Any], blobs: Sequence[Path]) -> float:
    started = time.perf_counter()
    for blob in blobs:
        with opener(blob) as stream:
            while stream.read(CHUNK):
                pass
    return time.perf_counter() - started


def python_gzip_seconds(blobs: Sequence[Path]) -> float:
    return _drain(lambda p: gzip.open(p, "rb"), blobs)


def isal_seconds(blobs: Sequence[Path]) -> float | None:
    try:
        from isal import igzip
    except ImportError:
        return None
    return _drain(lambda p: igzip.open(p, "rb"), blobs)  # type: ignore[no-untyped-call]


def warm_page_cache(blobs: Sequence[Path]) -> None:
    """Read every blob once so that no measurement pays for the disk and the first one is fair."""
    for blob in blobs:
        with open(blob, "rb") as f:
            while f.read(8 * CHUNK):
                pass


# -- the run -----------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _figure(name: str, unit: str, samples: Sequence[float], **kw: Any) -> Figure:
    return Figure(name=name, unit=unit, median=_median(samples), samples=tuple(samples), **kw)


@dataclass(frozen=True, slots=True)
class Round:
    """One round: the baseline and a cold scan measured back to back, so load affects both."""

    zcat: float
    python_gzip: float
    isal: float | None
    cold: ChildRun


def measure_round(reference: str, blobs: Sequence[Path], log: Path) -> Round:
    return Round(
        zcat=zcat_seconds(blobs),
        python_gzip=python_gzip_seconds(blobs),
        isal=isal_seconds(blobs),
        cold=run_child(reference, None, log),
    )


def measure(
    reference: str, blobs: Sequence[Path], repeat: int, log: Path
) -> tuple[list[Figure], ChildRun]:
    """Every figure of the benchmark, each measured `repeat` times in this one run.

    Ratios are taken per round (cold scan over the zcat run just before it), then the median,
    so a machine busy with other work during one round does not skew the comparison.
    """
    warm_page_cache(blobs)
    rounds = [measure_round(reference, blobs, log) for _ in range(repeat)]
    cache_dir = Path(tempfile.mkdtemp(prefix="tidegate-bench-cache-"))
    try:
        fill = run_child(reference, cache_dir, log)
        warm = [run_child(reference, cache_dir, log) for _ in range(repeat)]
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    cold = [r.cold for r in rounds]
    ratios = [r.cold.scan_seconds / r.zcat for r in rounds]
    warm_s = [w.scan_seconds for w in warm]
    peak = max(c.peak_rss_bytes for c in (*cold, fill, *warm))
    figures = [
        _figure("baseline: zcat > /dev/null", "s", [r.zcat for r in rounds]),
        _figure("reference: Python gzip", "s", [r.python_gzip for r in rounds]),
    ]
    isal_s = [r.isal for r in rounds if r.isal is not None]
    if len(isal_s) == len(rounds):
        figures.append(_figure("reference: isal igzip", "s", isal_s))
    figures += [
        _figure("cold scan (scan_image)", "s", [c.scan_seconds for c in cold]),
        _figure("cold scan / zcat", "x", ratios, target="<= 1.5x",
                met=_median(ratios) <= COLD_RATIO_TARGET),
    ]  # fmt: skip
    if len(isal_s) == len(rounds):
        isal_ratio = [r.cold.scan_seconds / i for r, i in zip(rounds, isal_s, strict=True)]
        figures.append(_figure("cold scan / isal igzip", "x", isal_ratio))
    figures += [
        _figure("cold scan, whole process", "s", [c.process_seconds for c in cold]),
        _figure("cache fill scan (cold + writing the cache)", "s", [fill.scan_seconds]),
        _figure("warm re-scan (scan_image)", "s", warm_s, target="< 0.5 s",
                met=_median(warm_s) < WARM_SECONDS_TARGET),
        _figure("warm re-scan, whole process", "s", [w.process_seconds for w in warm]),
        _figure("peak RSS, cold scan", "MB", [c.peak_rss_bytes / 1e6 for c in cold]),
        _figure("peak RSS, warm re-scan", "MB", [w.peak_rss_bytes / 1e6 for w in warm]),
        _figure("peak RSS, any scan", "MB", [peak / 1e6], target="< 300 MB",
                met=peak < PEAK_BYTES_TARGET),
    ]  # fmt: skip
    return figures, cold[0]


def render(result: Result) -> str:
    """A small table: figure, median, samples, target and whether it is met."""
    img = result.image
    lines = [
        f"scan benchmark: {img['reference']}  ({img['layers']} layers, "
        f"{img['uncompressed_bytes'] / 1e6:,.0f} MB uncompressed, "
        f"{img['compressed_bytes'] / 1e6:,.0f} MB gzip, {img['packages']} dpkg packages, "
        f"{img['executables']} executables); median of {result.repeat}",
        f"  scan found: {', '.join(f'{k} {v}' for k, v in result.catalogue.items())}",
        f"  {'figure':<44} {'median':>10}  {'target':<9} {'ok':<4} samples",
    ]
    for f in result.figures:
        ok = "" if f.met is None else ("yes" if f.met else "NO")
        samples = " ".join(f"{s:.2f}" for s in f.samples)
        lines.append(f"  {f.name:<44} {f.median:>8.2f} {f.unit:<2} {f.target:<9} {ok:<4} {samples}")
    return "\n".join(lines)


def _image(args: argparse.Namespace) -> tuple[dict[str, Any], list[Path]]:
    if args.image is None:
        stats = build_large_image.ensure_image(args.cache_dir)
        return asdict(stats), build_large_image.layer_blobs(Path(stats.layout), stats.tag)
    transport, _, rest = args.image.partition(":")
    layout, _, tag = rest.partition(":")
    if transport != "oci" or not layout:
        raise SystemExit(f"scan_bench: --image must be oci:LAYOUT[:TAG], not {args.image!r}")
    if not Path(layout, "index.json").is_file():
        raise SystemExit(f"scan_bench: {layout} is not an OCI layout (no index.json)")
    blobs = build_large_image.layer_blobs(Path(layout), tag or "latest")
    info = {
        "reference": args.image,
        "layers": len(blobs),
        "compressed_bytes": sum(b.stat().st_size for b in blobs),
        "uncompressed_bytes": sum(build_large_image.uncompressed_size(b) for b in blobs),
        "packages": -1,
        "executables": -1,
    }
    return info, blobs


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Scan time vs zcat, warm cache, peak memory.")
    p.add_argument("--repeat", type=int, default=3, help="measurements per figure (median)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--image", help="scan this oci:LAYOUT:TAG instead of the built large image")
    p.add_argument("--cache-dir", type=Path, help="where the large image is built and cached")
    p.add_argument("--child", nargs=2, metavar=("REF", "RESULT"), help=argparse.SUPPRESS)
    p.add_argument("--child-cache", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child[0], args.child_cache, args.child[1])
    image, blobs = _image(args)
    log = Path(tempfile.gettempdir()) / "tidegate-scan-bench.log"
    log.write_text("")
    figures, sample = measure(image["reference"], blobs, args.repeat, log)
    catalogue = {
        "packages": sample.packages,
        "executables": sample.executables,
        "unknowns": sample.unknowns,
    }
    result = Result(NAME, image, args.repeat, tuple(figures), catalogue)
    print(json.dumps(asdict(result), indent=2) if args.json else render(result))
    if args.check and any(f.met is False for f in figures):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
