"""OCI hook benchmark: what the enforcer's hook adds to a container start.

Figures, all from the same run, against a real `tidegate enforcer` process (deciding from a
cached bundle: 2 policies, the image registered) and real podman containers (runc):
- hook exec round trip: the hook program run exactly as podman runs it (`python -I -S hook.py
  --socket ... --state-dir ...`, the OCI state on stdin, exit status read), p50/p99 over
  `--decisions` runs (default 1,000); the state names a bundle laid out as podman lays it out
  (config.json, containers.json), captured from a real container;
- interpreter floor: `python -I -S -c pass` run the same way, interleaved with the hook runs:
  what any Python hook pays before its first line (the rest of the hook exec is its own);
- socket decision alone: the same request sent over the unix socket from this process
  (the enforcer's share: read config.json and metadata, decide, answer), p50/p99;
- container start without / with the hook: `podman run --rm --network none IMAGE true`, p50/p99
  over `--starts` runs each (default 30), interleaved so load hits both alike; the hook's added
  time and the ratio of the two.

Target: the hook adds under 20 ms at p99 (`hook exec p99`); `--check` exits 1 when missed.
Needs root, podman, runc, skopeo, umoci and busybox-static.

Run: `.venv/bin/python bench/hook_bench.py [--decisions N] [--starts N] [--json] [--repeat N]
[--check]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from tidegate import demo  # noqa: E402
from tidegate.core.bundle import (  # noqa: E402
    EnforcerGroupInfo,
    ImageRecord,
    build_bundle,
    build_image_index,
    bundle_to_json,
)
from tidegate.core.policy import Mode  # noqa: E402
from tidegate.core.runtime import (  # noqa: E402
    ImageStateKind,
    RuntimeControls,
    RuntimePolicy,
    RuntimePolicyId,
    default_runtime_policy,
)
from tidegate.enforcer import hook as hook_module  # noqa: E402

TARGET_P99_MS = 20.0
IMAGE = "localhost/tidegate-bench/demo:1.0"
CONTAINERS_CONF = (
    '[engine]\nruntime = "runc"\n\n[containers]\n'
    'default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]\n'
)
CAPTURE_HOOK = '#!/bin/sh\nstate=$(cat)\necho "$state" > {out}/state.json\n'
CAPTURE_HOOK += 'b=$(echo "$state" | sed -e \'s/.*"bundle":"\\([^"]*\\)".*/\\1/\')\n'
CAPTURE_HOOK += 'cp "$b/config.json" {out}/config.json\ncp "$b/../../containers.json" {out}/\n'


def _cache() -> Path:
    root = Path(os.environ.get("TIDEGATE_BENCH_CACHE") or Path.home() / ".cache/tidegate-bench")
    root.mkdir(parents=True, exist_ok=True)
    return root


class Engine:
    """podman on its own storage under `work`."""

    def __init__(self, work: Path) -> None:
        self.work = work
        (work / "containers.conf").write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(work / "containers.conf")}
        self.base = ["podman", "--root", str(work / "root"), "--runroot", str(work / "runroot"),
                     "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs"]  # fmt: skip

    def load_demo(self) -> str:
        layout = _cache() / "hook-demo" / "layout"
        if not layout.exists():
            demo.build(layout.parent)
        dest = f"containers-storage:[overlay@{self.work / 'root'}+{self.work / 'runroot'}]{IMAGE}"
        subprocess.run(
            ["skopeo", "copy", "--quiet", f"oci:{layout}:{demo.TAG}", dest],
            check=True,
            env=self.env,
            capture_output=True,
        )
        out = subprocess.run(
            [*self.base, "image", "inspect", "--format", "{{.Id}}", IMAGE],
            check=True,
            env=self.env,
            capture_output=True,
            text=True,
        )
        return "sha256:" + out.stdout.strip()

    def run(self, hooks_dir: Path | None) -> float:
        hooks = ["--hooks-dir", str(hooks_dir)] if hooks_dir else []
        cmd = [*self.base, *hooks, "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh",
               IMAGE, "-c", "true"]  # fmt: skip
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"podman run failed: {proc.stderr.strip()}")
        return elapsed


def _write_hook(hooks: Path, path: str, args: list[str]) -> Path:
    hooks.mkdir(parents=True, exist_ok=True)
    doc = {"version": "1.0.0", "hook": {"path": path, "args": args},
           "when": {"always": True}, "stages": ["createRuntime"]}  # fmt: skip
    (hooks / "hook.json").write_text(json.dumps(doc))
    return hooks


def _capture_state(engine: Engine, work: Path) -> bytes:
    """A real container's state, config.json and containers.json, laid out as podman does."""
    out = work / "captured"
    out.mkdir()
    script = work / "capture.sh"
    script.write_text(CAPTURE_HOOK.format(out=out))
    script.chmod(0o755)
    engine.run(_write_hook(work / "capture-hooks", str(script), [str(script)]))
    state = json.loads((out / "state.json").read_text())
    bundle = work / "fake-root" / "overlay-containers" / state["id"] / "userdata"
    bundle.mkdir(parents=True)
    shutil.copy(out / "config.json", bundle / "config.json")
    shutil.copy(out / "containers.json", bundle.parent.parent / "containers.json")
    state["bundle"] = str(bundle)
    return json.dumps(state).encode()


def _bundle(image_id: str) -> bytes:
    strict = RuntimePolicy(
        id=RuntimePolicyId("strict"),
        name="strict",
        mode=Mode.ENFORCE,
        controls=RuntimeControls(
            block_unregistered=True, block_disallowed=True, block_privileged=True
        ),
    )
    index = build_image_index(
        [ImageRecord(ImageStateKind.REGISTERED_APPROVED, config_digest=image_id, names=(IMAGE,))]
    )
    bundle = build_bundle(
        group=EnforcerGroupInfo(name="bench", mode=Mode.ENFORCE),
        policies=[default_runtime_policy(), strict],
        services=(),
        images=index,
        now=datetime.now(UTC),
    )
    return bundle_to_json(bundle)


def _start_enforcer(state_dir: Path) -> subprocess.Popen[bytes]:
    tidegate = Path(sys.executable).with_name("tidegate")
    log = (state_dir.parent / "enforcer.log").open("wb")
    proc = subprocess.Popen(
        [
            str(tidegate),
            "enforcer",
            "--console",
            "http://127.0.0.1:9",
            "--group-token",
            "bench",
            "--state-dir",
            str(state_dir),
            "--hostname",
            "bench",
        ],
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 30
    while not (state_dir / "enforcer.sock").is_socket():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("tidegate enforcer did not start")
        time.sleep(0.05)
    return proc


def _hook_exec(argv: list[str], state: bytes) -> Callable[[], float]:
    def once() -> float:
        start = time.perf_counter()
        proc = subprocess.run(argv, input=state, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"the hook refused: {proc.stderr.decode().strip()}")
        return elapsed

    return once


def _socket_decision(path: Path, state: bytes) -> Callable[[], float]:
    def once() -> float:
        start = time.perf_counter()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(path))
            sock.sendall(state)
            sock.shutdown(socket.SHUT_WR)
            answer = sock.recv(65536)
        elapsed = time.perf_counter() - start
        if not answer.startswith(b"allow"):
            raise RuntimeError(f"the enforcer refused: {answer.decode()}")
        return elapsed

    return once


def _pcts(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50_ms": statistics.median(ordered) * 1000, "p99_ms": p99 * 1000, "n": len(ordered)}


def measure(decisions: int, starts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tidegate-hook-bench-") as tmp:
        work = Path(tmp)
        engine = Engine(work)
        image_id = engine.load_demo()
        state = _capture_state(engine, work)
        state_dir = work / "state"
        state_dir.mkdir()
        (state_dir / "bundle.json").write_bytes(_bundle(image_id))
        enforcer = _start_enforcer(state_dir)
        try:
            sock = state_dir / "enforcer.sock"
            argv = [sys.executable, "-I", "-S", str(Path(hook_module.__file__).resolve()),
                    "--socket", str(sock), "--state-dir", str(state_dir)]  # fmt: skip
            hooks = _write_hook(work / "hooks.d", sys.executable, argv)
            hook = _hook_exec(argv, state)
            decide = _socket_decision(sock, state)
            for _ in range(20):  # warm the page cache and the enforcer
                hook(), decide()
            floor = _hook_exec([sys.executable, "-I", "-S", "-c", "pass"], b"")
            exec_times, floor_times = [], []
            for _ in range(decisions):  # interleaved: load from other work hits both alike
                exec_times.append(hook())
                floor_times.append(floor())
            socket_times = [decide() for _ in range(decisions)]
            engine.run(None), engine.run(hooks)
            plain: list[float] = []
            hooked: list[float] = []
            for _ in range(starts):
                plain.append(engine.run(None))
                hooked.append(engine.run(hooks))
        finally:
            enforcer.send_signal(signal.SIGTERM)
            enforcer.wait(timeout=30)
            subprocess.run(
                [*engine.base, "system", "reset", "--force"], env=engine.env, capture_output=True
            )
    without, with_hook = _pcts(plain), _pcts(hooked)
    return {
        "hook_exec": _pcts(exec_times),
        "interpreter_floor": _pcts(floor_times),
        "socket_decision": _pcts(socket_times),
        "start_without_hook": without,
        "start_with_hook": with_hook,
        "hook_adds_p50_ms": with_hook["p50_ms"] - without["p50_ms"],
        "hook_adds_p99_ms": with_hook["p99_ms"] - without["p99_ms"],
        "start_ratio_p50": with_hook["p50_ms"] / without["p50_ms"],
    }


def _median_of(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(float(value))
    return statistics.median(values)


FIGURES = [
    ("hook exec round trip p50 (ms)", ("hook_exec", "p50_ms")),
    ("hook exec round trip p99 (ms)", ("hook_exec", "p99_ms")),
    ("python -I -S -c pass p50 (ms)", ("interpreter_floor", "p50_ms")),
    ("python -I -S -c pass p99 (ms)", ("interpreter_floor", "p99_ms")),
    ("socket decision p50 (ms)", ("socket_decision", "p50_ms")),
    ("socket decision p99 (ms)", ("socket_decision", "p99_ms")),
    ("podman run, no hook p50 (ms)", ("start_without_hook", "p50_ms")),
    ("podman run, no hook p99 (ms)", ("start_without_hook", "p99_ms")),
    ("podman run, with hook p50 (ms)", ("start_with_hook", "p50_ms")),
    ("podman run, with hook p99 (ms)", ("start_with_hook", "p99_ms")),
    ("hook adds at p50 (ms)", ("hook_adds_p50_ms",)),
    ("start with / without hook, p50", ("start_ratio_p50",)),
]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="hook_bench")
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--starts", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--check", action="store_true", help=f"exit 1 if hook exec p99 >= {TARGET_P99_MS} ms"
    )
    args = parser.parse_args(list(argv))
    missing = [t for t in ("podman", "runc", "skopeo", "umoci") if shutil.which(t) is None]
    if missing or os.geteuid() != 0:
        print(f"hook_bench: needs root and {', '.join(missing) or 'podman'}", file=sys.stderr)
        return 2
    runs = [measure(args.decisions, args.starts) for _ in range(max(1, args.repeat))]
    figures = {label: _median_of(runs, *path) for label, path in FIGURES}
    p99 = figures["hook exec round trip p99 (ms)"]
    if args.json:
        print(
            json.dumps({"figures": figures, "runs": runs, "target_p99_ms": TARGET_P99_MS}, indent=2)
        )
    else:
        width = max(len(label) for label in figures)
        for label, path in FIGURES:
            samples = ", ".join(f"{_median_of([r], *path):.2f}" for r in runs)
            print(f"{label:<{width}}  {figures[label]:9.2f}   [{samples}]")
        verdict = "met" if p99 < TARGET_P99_MS else "MISSED"
        print(f"target: hook exec p99 < {TARGET_P99_MS:.0f} ms: {verdict}")
    return 1 if args.check and p99 >= TARGET_P99_MS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
