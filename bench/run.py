"""Run every benchmark in bench/ (each `*_bench.py` module's `main(argv) -> int`) and print figures.

A benchmark module follows one convention: `NAME`, a `main(argv) -> int` that measures, prints its
figures (a table, or one JSON document with `--json`) and stops by itself. `run.py` imports them in
name order and calls each in turn, passing the arguments it does not consume itself. With `--json`
it prints one JSON object, `{benchmark name: that benchmark's document}`.

Run: `make bench`, or `.venv/bin/python bench/run.py [--only scan] [--json] [--repeat N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parent


def discover(bench_dir: Path = BENCH_DIR) -> list[str]:
    """The module names of the benchmarks in `bench_dir`, in name order."""
    return sorted(p.stem for p in bench_dir.glob("*_bench.py"))


def load(name: str) -> Callable[[Sequence[str]], int]:
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    module: ModuleType = importlib.import_module(name)
    entry = getattr(module, "main", None)
    if not callable(entry):
        raise SystemExit(f"bench/run.py: {name}.py has no main(argv) -> int")
    return entry  # type: ignore[no-any-return]


def run_one(name: str, argv: Sequence[str], as_json: bool) -> tuple[int, object]:
    """Run one benchmark; with `as_json` its stdout is captured and parsed as its document."""
    entry = load(name)
    if not as_json:
        print(f"== {name}", flush=True)
        code = entry([*argv])
        print(flush=True)
        return code, None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = entry([*argv, "--json"])
    try:
        return code, json.loads(out.getvalue())
    except ValueError:
        return code, {"error": "no JSON document", "output": out.getvalue()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks in bench/.")
    parser.add_argument("--only", action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object of results")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and stop")
    args, rest = parser.parse_known_args(argv)
    names = discover()
    if args.list:
        print("\n".join(names))
        return 0
    if args.only:
        wanted = {n if n.endswith("_bench") else f"{n}_bench" for n in args.only}
        unknown = wanted - set(names)
        if unknown:
            parser.error(f"no such benchmark: {', '.join(sorted(unknown))} (have {names})")
        names = [n for n in names if n in wanted]
    worst = 0
    documents: dict[str, object] = {}
    for name in names:
        code, doc = run_one(name, rest, args.json)
        worst = max(worst, code)
        documents[name.removesuffix("_bench")] = doc
    if args.json:
        print(json.dumps(documents, indent=2))
    return worst


if __name__ == "__main__":
    sys.exit(main())
