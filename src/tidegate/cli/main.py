"""The `tidegate` command: one entry point, subcommands, every exit code from one table.

`main(argv, stdout, stderr) -> int` does the work and never exits; only `entrypoint()` ends the
process. Errors from the package's tree become one clear line on stderr and their exit code.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import TextIO

from tidegate import __version__
from tidegate.cli import (
    admin_cmd,
    apply_cmd,
    console_cmd,
    db_cmd,
    enforcer_cmd,
    profile_cmd,
    scan_cmd,
    scanner_cmd,
)
from tidegate.cli.exit_codes import ExitCode, exit_code_table
from tidegate.core.errors import (
    AuthError,
    ConsoleApiError,
    ConsoleError,
    ImageError,
    ReferenceError_,
    ReportError,
    StoreError,
    TidegateError,
    UsageError,
    VulnDBError,
)
from tidegate.enforcer.errors import EnforcerError


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so `main` stays in charge of exit codes."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tidegate",
        description="Open-source container security: scan images, decide what may run.",
        epilog="exit codes:\n" + exit_code_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tidegate {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    scan_cmd.register(commands)
    db_cmd.register(commands)
    console_cmd.register(commands)
    admin_cmd.register(commands)
    apply_cmd.register(commands)
    scanner_cmd.register(commands)
    enforcer_cmd.register(commands)
    profile_cmd.register(commands)
    return parser


def main(
    argv: list[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(out)
            return ExitCode.USAGE
        return int(args.run(args, out, err))
    except SystemExit as exc:  # --help and --version end argparse's work, not the process
        return int(exc.code or 0) if not isinstance(exc.code, str) else ExitCode.USAGE
    except KeyboardInterrupt:
        err.write("tidegate: interrupted\n")
        return ExitCode.INTERRUPTED
    except TidegateError as exc:
        err.write(f"tidegate: error: {exc}\n")
        return _code_for(exc)
    except Exception:
        if debug:
            traceback.print_exc(file=err)
        else:
            err.write(
                "tidegate: internal error (a bug): run again with --debug for the traceback\n"
            )
        return ExitCode.INTERNAL_ERROR


def _code_for(exc: TidegateError) -> ExitCode:
    if isinstance(exc, UsageError | ReferenceError_):
        return ExitCode.USAGE
    if isinstance(exc, AuthError):
        return ExitCode.AUTH_ERROR
    if isinstance(exc, ImageError):
        return ExitCode.IMAGE_ERROR
    if isinstance(exc, VulnDBError):
        return ExitCode.VULNDB_ERROR
    if isinstance(exc, ReportError):
        return ExitCode.OUTPUT_ERROR
    if isinstance(exc, StoreError):
        return ExitCode.DATABASE_ERROR
    if isinstance(exc, EnforcerError):
        return ExitCode.ENFORCER_ERROR
    if isinstance(exc, ConsoleApiError) and exc.status in (401, 403):
        return ExitCode.AUTH_ERROR
    if isinstance(exc, ConsoleError):
        return ExitCode.CONSOLE_UNREACHABLE
    return ExitCode.INTERNAL_ERROR


def entrypoint() -> None:
    sys.exit(main())
