"""Exec-heavy workload in a real podman container, with and without the runtime monitor.

The workload: `podman exec C sh -c 'i=0; while [ $i -lt N ]; do /bin/busybox true; ...'` (N =
`--execs`, 3,000 by default): every iteration forks and execs the image's busybox, so every
iteration is one FAN_OPEN_EXEC_PERM decision when the monitor watches the container. Each round
runs the workload without the monitor, then with a started Monitor (enforce group, the default
policy's drift prevention in enforce, the image registered in the policy bundle with its real
executable inventory from a scan: path -> sha256 prefix, compared with the hash of every exec'd
file; an `on_exec` observer counting every decision, as the profiler will), so load from other
work hits both; the ratio is taken per round and its median reported (target < 1.3x).
Decision latency (event read -> answer written, in the monitor) is given as p50/p90/p99/max over
every exec of every round.

Needs root, podman, runc, skopeo, umoci, busybox-static. Run:
`.venv/bin/python bench/exec_bench.py [--execs N] [--repeat N] [--json] [--check]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tidegate import demo
from tidegate.core.bundle import EnforcerGroupInfo, ImageRecord, build_bundle, build_image_index
from tidegate.core.policy import Mode
from tidegate.core.runtime import ImageStateKind, default_runtime_policy
from tidegate.enforcer.monitor import Monitor, inspect_podman
from tidegate.image import open_image
from tidegate.scan import scan_image

TARGET_RATIO = 1.3
IMAGE = "localhost/tidegate-bench/exec:1"
CONTAINERS_CONF = """\
[engine]
runtime = "runc"

[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
"""


def _cache() -> Path:
    root = Path(os.environ.get("TIDEGATE_BENCH_CACHE") or Path.home() / ".cache" / "tidegate-bench")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _demo_layout() -> Path:
    final = _cache() / "exec-demo-v1"
    if not (final / "layout").exists():
        tmp = Path(tempfile.mkdtemp(prefix=".exec-demo.", dir=_cache()))
        demo.build(tmp)
        tmp.rename(final)
    return final / "layout"


class Engine:
    """podman on its own storage (a short path: podman refuses a runroot over 50 characters)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "containers.conf").write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(root / "containers.conf")}
        os.environ["CONTAINERS_CONF"] = self.env["CONTAINERS_CONF"]  # for inspect_podman

    def base(self) -> list[str]:
        return [
            "podman", "--root", str(self.root / "root"), "--runroot", str(self.root / "run"),
            "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
            "--events-backend", "none",
        ]  # fmt: skip

    def run(self, *args: str) -> str:
        proc = subprocess.run(
            [*self.base(), *args], env=self.env, capture_output=True, text=True, timeout=600
        )
        if proc.returncode != 0:
            raise SystemExit(f"exec bench: podman {args[0]} failed: {proc.stderr.strip()}")
        return proc.stdout


def _workload(engine: Engine, cid: str, execs: int) -> float:
    loop = f"i=0; while [ $i -lt {execs} ]; do /bin/busybox true; i=$((i+1)); done"
    start = time.perf_counter()
    engine.run("exec", cid, "sh", "-c", loop)
    return time.perf_counter() - start


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _measure(engine: Engine, cid: str, args: argparse.Namespace) -> dict[str, Any]:
    (watched,) = inspect_podman(engine.base(), [cid])
    assert watched.image_id is not None
    layout = _demo_layout()
    executables = scan_image(open_image(f"oci:{layout}:{demo.TAG}")).catalogue.executables
    inventory = {e.path: e.sha256 for e in executables}
    policy = default_runtime_policy()
    bundle = build_bundle(
        group=EnforcerGroupInfo(name="bench", mode=Mode.ENFORCE),
        policies=[replace(policy, mode=Mode.ENFORCE)],
        services=(),
        images=build_image_index(
            [
                ImageRecord(
                    ImageStateKind.REGISTERED_APPROVED,
                    config_digest=watched.image_id,
                    executables=inventory,
                )
            ]
        ),
        now=datetime.now(UTC),
    )
    if bundle.images.inventory_of(watched.image_id) is None:
        raise SystemExit("exec bench: the bundle lost the image's inventory")
    observed: list[int] = [0]

    def on_exec(*_: object) -> None:
        observed[0] += 1

    events: list[dict[str, Any]] = []
    bare, monitored, ratios, latencies = [], [], [], []
    _workload(engine, cid, 50)  # warm: page cache, podman's own first-run costs
    for _ in range(args.repeat):
        without = _workload(engine, cid, args.execs)
        monitor = Monitor(
            lambda: bundle,
            events.append,
            host="bench",
            on_exec=None if args.no_observer else on_exec,
        )
        monitor.watch(watched)
        monitor.start()
        try:
            with_monitor = _workload(engine, cid, args.execs)
        finally:
            monitor.stop()
        if monitor.stats.execs < args.execs:
            raise SystemExit(f"exec bench: the monitor saw {monitor.stats.execs} execs only")
        bare.append(without)
        monitored.append(with_monitor)
        ratios.append(with_monitor / without)
        latencies += list(monitor.stats.latencies)
    if events:
        raise SystemExit(f"exec bench: the image's own busybox raised events: {events[:2]}")
    ms = [v * 1000 for v in latencies]
    return {
        "execs": args.execs,
        "without_monitor_s": statistics.median(bare),
        "with_monitor_s": statistics.median(monitored),
        "ratio": statistics.median(ratios),
        "ratio_samples": [round(r, 3) for r in ratios],
        "per_exec_overhead_us": (statistics.median(monitored) - statistics.median(bare))
        / args.execs
        * 1e6,
        "decisions": len(ms),
        "on_exec_calls": observed[0],
        "latency_ms": {
            "p50": _percentile(ms, 0.50),
            "p90": _percentile(ms, 0.90),
            "p99": _percentile(ms, 0.99),
            "max": max(ms),
        },
        "target_ratio": TARGET_RATIO,
    }


def _print(result: dict[str, Any]) -> None:
    lat = result["latency_ms"]
    rows = [
        ("workload", f"{result['execs']} execs of /bin/busybox in one podman exec"),
        ("without monitor", f"{result['without_monitor_s']:.3f} s"),
        ("with monitor (enforce)", f"{result['with_monitor_s']:.3f} s"),
        ("ratio (median of rounds)", f"{result['ratio']:.3f}x  {result['ratio_samples']}"),
        ("overhead per exec", f"{result['per_exec_overhead_us']:.0f} us"),
        (
            "decision latency",
            f"p50 {lat['p50']:.3f} ms  p90 {lat['p90']:.3f} ms  p99 {lat['p99']:.3f} ms  "
            f"max {lat['max']:.3f} ms  ({result['decisions']} decisions)",
        ),
        ("target", f"ratio < {TARGET_RATIO}x"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execs", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-observer", action="store_true", help="run the monitor without an on_exec observer"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    missing = [t for t in ("podman", "runc", "skopeo", "umoci", "busybox") if not shutil.which(t)]
    if missing or os.geteuid() != 0:
        print(f"exec bench skipped: needs root and {', '.join(missing) or 'nothing else'}")
        return 0
    root = Path(tempfile.mkdtemp(prefix="tgx", dir="/tmp"))
    engine = Engine(root)
    try:
        ref = f"containers-storage:[overlay@{root / 'root'}+{root / 'run'}]{IMAGE}"
        subprocess.run(
            ["skopeo", "copy", "--quiet", f"oci:{_demo_layout()}:{demo.TAG}", ref],
            check=True, env=engine.env, capture_output=True,
        )  # fmt: skip
        cid = engine.run("run", "-d", "--network", "none", IMAGE, "sleep", "3600").strip()
        result = _measure(engine, cid, args)
    finally:
        subprocess.run(
            [*engine.base(), "rm", "-af", "-t", "0"], env=engine.env, capture_output=True
        )
        subprocess.run(
            [*engine.base(), "system", "reset", "-f"], env=engine.env, capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
    return 1 if args.check and result["ratio"] >= TARGET_RATIO else 0


if __name__ == "__main__":
    sys.exit(main())
