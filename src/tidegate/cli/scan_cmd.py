"""`tidegate scan IMAGE`: read an image, catalogue it, write the report."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from tidegate.cli.exit_codes import ExitCode
from tidegate.cli.progress import ScanBars, wants_progress
from tidegate.core.errors import ReportError, UsageError
from tidegate.core.models import ScanResult
from tidegate.image import SourceOptions, open_image
from tidegate.report import ReportOptions, get_writer, writers
from tidegate.scan import LayerCache, ScanProgress, scan_image

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
        "--insecure", action="store_true", help="allow plain HTTP and unverified TLS (local registries)"
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        help=f"keep a layer cache here (or ${ENV_CACHE_DIR}); without it nothing is written to disk",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.add_argument(
        "--executables", action="store_true", help="list every executable in the table output"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitCode:
    writer = get_writer(args.format)
    options = _source_options(args)
    cache_dir = args.cache_dir or _env_path(ENV_CACHE_DIR)
    cache = LayerCache(cache_dir) if cache_dir is not None else None
    source = open_image(args.image, options)
    try:
        with _progress(err, args.quiet) as progress:
            result = scan_image(source, cache=cache, progress=progress)
    finally:
        source.close()
    _write(result, writer.name, args, out)
    return ExitCode.OK


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


def _write(result: ScanResult, fmt: str, args: argparse.Namespace, out: TextIO) -> None:
    writer = get_writer(fmt)
    options = ReportOptions(include_executables=args.executables)
    if args.output is None:
        writer.write(result, out, options)
        return
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            writer.write(result, f, options)
    except OSError as exc:
        raise ReportError(f"cannot write {args.output}: {exc.strerror or exc}") from exc


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None
