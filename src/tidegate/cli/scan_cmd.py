"""`tidegate scan IMAGE`: read an image, catalogue it, write the report; with `--console` or
`--policy`, also the CI/CD gate (`cli.gate`): assure, register, report artifacts."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from tidegate.cli import gate
from tidegate.cli.exit_codes import ExitCode
from tidegate.cli.progress import ScanBars, wants_progress
from tidegate.cli.settings import add_db_options, db_path
from tidegate.core.errors import ReportError, UsageError, VulnDBError
from tidegate.core.ignore import FindingFilter, filter_findings
from tidegate.core.models import ScanResult, Severity
from tidegate.core.policy import AssurancePolicy, Verdict
from tidegate.image import SourceOptions, open_image
from tidegate.report import ReportOptions, get_writer, writers
from tidegate.scan import LayerCache, ScanProgress, scan_image
from tidegate.scan.ignorefile import DEFAULT_NAME as DEFAULT_IGNORE_FILE
from tidegate.scan.ignorefile import load_ignore_file
from tidegate.scan.match import match_result
from tidegate.vulndb import VulnStore

ENV_USERNAME = "TIDEGATE_REGISTRY_USERNAME"
ENV_PASSWORD = "TIDEGATE_REGISTRY_PASSWORD"
ENV_CACHE_DIR = "TIDEGATE_CACHE_DIR"


def register(commands: Any) -> None:
    p = commands.add_parser(
        "scan",
        help="scan a container image and report what is inside",
        description=(
            "Scan IMAGE: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, "
            "dir:ROOTFS (an unpacked root filesystem), or HOST[:PORT]/REPO[:TAG|@DIGEST]."
        ),
    )
    p.add_argument("image", metavar="IMAGE", help="the image reference")
    fmt_help = "; ".join(f"{n}: {w.description}" for n, w in writers().items())
    p.add_argument("-f", "--format", default="table", help=f"output format ({fmt_help})")
    p.add_argument("-o", "--output", type=Path, help="write the report to FILE (default: stdout)")
    p.add_argument("--platform", default="linux/amd64", help="os/arch[/variant] of an index")
    p.add_argument("--username", help=f"registry user (or ${ENV_USERNAME})")
    p.add_argument("--password", help=f"registry password (or ${ENV_PASSWORD})")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--registry-token", help="a bearer token for the registry")
    p.add_argument("--ca-file", type=Path, help="CA bundle to verify the registry's TLS")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain HTTP and unverified TLS (local registries)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        help=f"keep a layer cache here (or ${ENV_CACHE_DIR}); default: none, nothing on disk",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.add_argument(
        "--executables", action="store_true", help="list every executable in the table output"
    )
    add_db_options(p)
    p.add_argument(
        "--skip-db", action="store_true", help="catalogue only: do not match vulnerabilities"
    )
    p.add_argument(
        "--severity",
        help="show only findings of these severities (comma separated: critical,high,...)",
    )
    p.add_argument(
        "--ignore-unfixed", action="store_true", help="hide findings that have no fix yet"
    )
    p.add_argument(
        "--ignorefile",
        type=Path,
        help=f"ignore rules (default: ./{DEFAULT_IGNORE_FILE} when it exists)",
    )
    p.add_argument(
        "--fail-on",
        metavar="SEVERITY",
        help="exit 1 when a shown finding is at least this severe (e.g. high)",
    )
    gate.add_gate_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitCode:
    writer = get_writer(args.format)
    spec = _finding_filter(args)
    fail_on = _severity(args.fail_on, "--fail-on") if args.fail_on else None
    gate_options = gate.gate_options(args, os.environ)
    store = None if args.skip_db else _open_db(args, err)
    options = _source_options(args)
    cache_dir = args.cache_dir or _env_path(ENV_CACHE_DIR)
    cache = LayerCache(cache_dir) if cache_dir is not None else None
    source = open_image(args.image, options)
    try:
        with _progress(err, args.quiet) as progress:
            result = scan_image(source, cache=cache, progress=progress)
    finally:
        source.close()
    if store is not None:
        with store:
            result = match_result(result, store, store.snapshot_id())
    # The gate judges every finding: local ignore rules and display filters only shape output.
    outcome = None
    if gate_options is not None:
        outcome = gate.run_gate(
            result, gate_options, err=err, env=os.environ, now=datetime.now(UTC)
        )
    if store is not None:
        result = _apply_filter(result, spec, err)
    verdict = outcome.verdict if outcome is not None else None
    policies = outcome.policies if outcome is not None else ()
    _write(result, writer.name, args, out, verdict, policies)
    if outcome is not None and outcome.exit_code is not ExitCode.OK:
        return outcome.exit_code
    if fail_on is not None and any(f.severity.rank >= fail_on.rank for f in result.findings):
        err.write(f"tidegate: findings at or above {fail_on.value}: failing (--fail-on)\n")
        return ExitCode.POLICY_FAILED
    return ExitCode.OK


def _open_db(args: argparse.Namespace, err: TextIO) -> VulnStore | None:
    path, named = db_path(args)
    if not path.exists():
        if named:
            raise VulnDBError(f"vulnerability database {path} does not exist")
        err.write(
            f"tidegate: warning: no vulnerability database at {path}; showing the catalogue "
            "only. Run `tidegate db update` (or `tidegate db import PATH...`) first, or pass "
            "--skip-db to silence this.\n"
        )
        return None
    return VulnStore.open(path)


def _severity(text: str, option: str) -> Severity:
    try:
        return Severity(text.strip().lower())
    except ValueError:
        valid = ", ".join(s.value for s in Severity)
        raise UsageError(f"{option}: unknown severity {text!r} (one of: {valid})") from None


def _finding_filter(args: argparse.Namespace) -> FindingFilter:
    severities = frozenset(
        _severity(s, "--severity") for s in (args.severity or "").split(",") if s.strip()
    )
    path = args.ignorefile
    if path is None and Path(DEFAULT_IGNORE_FILE).is_file():
        path = Path(DEFAULT_IGNORE_FILE)
    elif path is not None and not path.is_file():
        raise UsageError(f"--ignorefile {path}: no such file")
    rules = load_ignore_file(path) if path is not None else ()
    return FindingFilter(severities, args.ignore_unfixed, rules)


def _apply_filter(result: ScanResult, spec: FindingFilter, err: TextIO) -> ScanResult:
    outcome = filter_findings(result.findings, spec, datetime.now(UTC))
    for rule in outcome.expired_rules:
        err.write(
            f"tidegate: ignore rule for {rule.id} expired on {rule.expires:%Y-%m-%d}: "
            "it no longer hides anything\n"
        )
    if outcome.ignored:
        err.write(f"tidegate: {len(outcome.ignored)} finding(s) hidden by ignore rules\n")
    return replace(result, findings=outcome.kept)


def _source_options(args: argparse.Namespace) -> SourceOptions:
    password = args.password or os.environ.get(ENV_PASSWORD)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    username = args.username or os.environ.get(ENV_USERNAME)
    if password and not username:
        raise UsageError("a registry password was given without --username")
    if args.ca_file is not None and not args.ca_file.is_file():
        raise UsageError(f"--ca-file {args.ca_file}: no such file")
    return SourceOptions(
        platform=args.platform,
        username=username,
        password=password,
        token=args.registry_token,
        ca_file=args.ca_file,
        insecure=args.insecure,
    )


@contextlib.contextmanager
def _progress(err: TextIO, quiet: bool) -> Iterator[ScanProgress | None]:
    if not wants_progress(err, quiet):
        yield None
        return
    with ScanBars(err) as bars:
        yield bars


def _write(
    result: ScanResult,
    fmt: str,
    args: argparse.Namespace,
    out: TextIO,
    verdict: Verdict | None = None,
    policies: tuple[AssurancePolicy, ...] = (),
) -> None:
    writer = get_writer(fmt)
    # Machine-readable documents always carry the executable inventory (drift prevention reads
    # it); --executables only asks the table to list it too.
    options = ReportOptions(
        include_executables=args.executables or writer.name != "table", policies=policies
    )
    if args.output is None:
        writer.write(result, out, options, verdict)
        return
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            writer.write(result, f, options, verdict)
    except OSError as exc:
        raise ReportError(f"cannot write {args.output}: {exc.strerror or exc}") from exc


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None
