"""`tidegate scanner`: a remote scan worker. It claims jobs from a console over its API, pulls
each image from the registry itself, matches it with its local vulnerability DB, heartbeats while
it works, and posts the result (or the failure). Run as many as the queue needs, anywhere.

SIGTERM and SIGINT stop it gracefully: the job in hand is finished (or failed) and posted first.

Test hook: TIDEGATE_TEST_SCAN_HOLD=SECONDS makes each worker wait (heartbeating) between the scan
and posting its result, so tests can kill a scanner in the middle of a job. Never set it in
production.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from tidegate.cli.exit_codes import ExitCode
from tidegate.cli.settings import db_path
from tidegate.client.base import ConsoleClient
from tidegate.client.jobs import ApiJobSource, Job, ScanFn, Worker, image_scanner, worker_name
from tidegate.core.errors import UsageError

ENV_CONSOLE = "TIDEGATE_CONSOLE"
ENV_TOKEN = "TIDEGATE_TOKEN"
ENV_CACHE_DIR = "TIDEGATE_CACHE_DIR"
ENV_TEST_HOLD = "TIDEGATE_TEST_SCAN_HOLD"
"""Test hook (see the module docstring)."""


def register(commands: Any) -> None:
    p = commands.add_parser(
        "scanner", help="run a remote scan worker: claim jobs from a console, scan, post results"
    )
    p.add_argument("--console", metavar="URL", help=f"the console's address (or ${ENV_CONSOLE})")
    p.add_argument("--token", help=f"an API token with the scan-jobs permission (or ${ENV_TOKEN})")
    p.add_argument("--concurrency", type=int, default=1, help="jobs scanned at once (default 1)")
    p.add_argument("--data-dir", type=Path, help="data directory (or $TIDEGATE_DATA_DIR)")
    p.add_argument("--db", type=Path, help="vulnerability DB file (or $TIDEGATE_DB)")
    p.add_argument(
        "--cache-dir", type=Path, help=f"layer cache directory (or ${ENV_CACHE_DIR}; default none)"
    )
    p.add_argument(
        "--lease-seconds", type=float, help="job lease to ask for (default: the console's)"
    )
    p.add_argument(
        "--poll-interval", type=float, default=1.0, help="seconds between claims when idle"
    )
    p.add_argument("--ca-file", help="PEM bundle to verify the console's TLS certificate")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    p.set_defaults(run=run)


def _options(args: argparse.Namespace) -> tuple[str, str]:
    console = args.console or os.environ.get(ENV_CONSOLE)
    token = args.token or os.environ.get(ENV_TOKEN)
    if not console or not token:
        raise UsageError("scanner: give --console URL and --token T (or $TIDEGATE_CONSOLE/_TOKEN)")
    if args.concurrency < 1 or args.concurrency > 64:
        raise UsageError(f"--concurrency: {args.concurrency} is not between 1 and 64")
    if args.poll_interval <= 0:
        raise UsageError(f"--poll-interval: {args.poll_interval} is not a positive number")
    return console, token


def _hold_seconds() -> float:
    text = os.environ.get(ENV_TEST_HOLD, "")
    try:
        return float(text) if text else 0.0
    except ValueError as exc:
        raise UsageError(f"${ENV_TEST_HOLD}: {text!r} is not a number of seconds") from exc


def _snapshot_check(scan: ScanFn, local: str | None, err: TextIO) -> ScanFn:
    """Warn (once per console snapshot) when this scanner's DB is not the console's."""
    warned: set[str | None] = set()
    lock = threading.Lock()

    def checked(job: Job) -> dict[str, Any]:
        with lock:
            if job.db_snapshot != local and job.db_snapshot not in warned:
                warned.add(job.db_snapshot)
                err.write(
                    f"tidegate scanner: warning: local DB snapshot {local or 'none'} differs from"
                    f" the console's {job.db_snapshot or 'none'}: results record the local one\n"
                )
        return scan(job)

    return checked


def _local_snapshot(path: Path) -> str | None:
    from tidegate.vulndb import VulnStore

    if not path.exists():
        return None
    with VulnStore.open(path) as store:
        return store.snapshot_id() or None


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitCode:
    console, token = _options(args)
    logging.basicConfig(
        stream=err, level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s"
    )
    path, named = db_path(args)
    if named and not path.exists():
        raise UsageError(f"--db {path}: no such file")
    cache = args.cache_dir or (
        Path(os.environ[ENV_CACHE_DIR]) if ENV_CACHE_DIR in os.environ else None
    )
    scan = _snapshot_check(
        image_scanner(vulndb_path=path, cache_dir=cache), _local_snapshot(path), err
    )
    stop = threading.Event()
    verify: bool | str = args.ca_file or True
    with ConsoleClient(console, token, verify=verify) as client:
        client.request("GET", "/auth/me")  # a bad URL or token fails now, not in the loop
        source = ApiJobSource(client, lease_seconds=args.lease_seconds)
        workers = [
            Worker(
                source,
                scan,
                name=worker_name(i),
                stop=stop,
                poll_interval=args.poll_interval,
                hold_seconds=_hold_seconds(),
            )
            for i in range(args.concurrency)
        ]
        _run_until_stopped(workers, stop)
    done = sum(w.done for w in workers)
    failed = sum(w.failed for w in workers)
    out.write(f"tidegate scanner: stopped; {done} job(s) done, {failed} failed\n")
    return ExitCode.OK


def _run_until_stopped(workers: list[Worker], stop: threading.Event) -> None:
    threads = [threading.Thread(target=w.run, name=w.name, daemon=True) for w in workers]
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def graceful(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, graceful)
    try:
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(0.2)
    finally:
        stop.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
