"""`tidegate db update | import | status`: build and inspect the local vulnerability database."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from tidegate.cli.exit_codes import ExitCode
from tidegate.cli.progress import wants_progress
from tidegate.cli.settings import add_db_options, db_path
from tidegate.core.errors import VulnDBError
from tidegate.vulndb import (
    DEFAULT_ECOSYSTEMS,
    OSV_BASE_URL,
    ImportReport,
    VulnStore,
    import_paths,
    update,
)


def register(commands: Any) -> None:
    db = commands.add_parser("db", help="build and inspect the vulnerability database")
    sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    p = sub.add_parser("update", help="download osv.dev archives and update the database")
    add_db_options(p)
    p.add_argument(
        "-e",
        "--ecosystem",
        action="append",
        help=f"an OSV ecosystem to fetch (repeatable; default: {', '.join(DEFAULT_ECOSYSTEMS)})",
    )
    p.add_argument("--base-url", default=OSV_BASE_URL, help="where the ECOSYSTEM/all.zip live")
    p.add_argument("--strict", action="store_true", help="fail on any malformed record")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=run_update)

    p = sub.add_parser("import", help="import OSV records from files, directories and zips")
    add_db_options(p)
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--strict", action="store_true", help="fail on any malformed record")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=run_import)

    p = sub.add_parser("status", help="show sources, counts, age and snapshot id")
    add_db_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run_status)


class _Bars:
    """The vulndb Progress protocol drawn as rich bars (one per task)."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=Console(file=stream),
            disable=not enabled,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _Bars:
        self._progress.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def start(self, task: str, total: int | None) -> None:
        self._tasks[task] = self._progress.add_task(task, total=total)

    def advance(self, task: str, n: int = 1) -> None:
        if task in self._tasks:
            self._progress.advance(self._tasks[task], n)

    def done(self, task: str) -> None:
        if task in self._tasks:
            t = self._tasks[task]
            total = self._progress.tasks[t].total if t < len(self._progress.tasks) else None
            self._progress.update(t, completed=total or 0)


def run_update(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitCode:
    path, _ = db_path(args)
    ecosystems = args.ecosystem or list(DEFAULT_ECOSYSTEMS)
    with _Bars(err, wants_progress(err, args.quiet)) as bars:
        report = update(path, ecosystems, base_url=args.base_url, progress=bars, strict=args.strict)
    for eco in report.ecosystems:
        state = "unchanged" if eco.not_modified else f"{eco.downloaded_bytes:,} bytes"
        resumed = f", resumed at {eco.resumed_from:,}" if eco.resumed_from else ""
        out.write(f"{eco.ecosystem}: {state}{resumed}\n")
    _summary(report.imported, path, out, err)
    return ExitCode.OK


def run_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitCode:
    path, _ = db_path(args)
    for p in args.paths:
        if not p.exists():
            raise VulnDBError(f"db import: {p}: no such file or directory")
    with _Bars(err, wants_progress(err, args.quiet)) as bars:
        report = import_paths(path, args.paths, progress=bars, strict=args.strict)
    _summary(report, path, out, err)
    return ExitCode.OK


def _summary(report: ImportReport, path: Path, out: TextIO, err: TextIO) -> None:
    out.write(
        f"{path}: {report.imported} new, {report.updated} updated, "
        f"{report.skipped_older} unchanged, {report.withdrawn} withdrawn, "
        f"{len(report.errors)} rejected; snapshot {report.snapshot_id}\n"
    )
    for problem in report.errors[:20]:
        record = f" [{problem.record}]" if problem.record else ""
        err.write(f"  rejected {problem.where}{record}: {problem.problem}\n")
    if len(report.errors) > 20:
        err.write(f"  ... and {len(report.errors) - 20} more\n")


def run_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitCode:
    path, _ = db_path(args)
    if not path.exists():
        raise VulnDBError(
            f"no vulnerability database at {path}: run `tidegate db update` "
            "(or `tidegate db import PATH...`)"
        )
    with VulnStore.open(path) as store:
        status = store.status()
    now = datetime.now(UTC)
    if args.json:
        doc = asdict(status)
        age = status.age(now)
        doc["age_seconds"] = None if age is None else int(age.total_seconds())
        out.write(json.dumps(doc, default=str, indent=2) + "\n")
        return ExitCode.OK
    console = Console(file=out, width=100)
    age = status.age(now)
    console.print(f"Database   {status.path}")
    console.print(f"Snapshot   {status.snapshot_id}")
    console.print(f"Built      {status.built_at} ({_age(age.total_seconds() if age else None)})")
    console.print(f"Records    {status.advisories:,} advisories, {status.affected_rows:,} entries")
    table = Table("Source", "Records", "Last update", "Newest record", box=None)
    for s in status.sources:
        table.add_row(
            s.name, f"{s.count:,}", str(s.last_update or "-"), str(s.last_modified or "-")
        )
    console.print(table)
    eco = Table("Ecosystem", "Advisories", box=None)
    for name, count in status.ecosystems:
        eco.add_row(name, f"{count:,}")
    console.print(eco)
    return ExitCode.OK


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "age unknown"
    if seconds < 3600:
        return f"{int(seconds // 60)} min old"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h old"
    return f"{seconds / 86400:.1f} days old"
