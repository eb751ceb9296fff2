"""Every exit code of the `tidegate` command, in one table (the README shows the same table)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    POLICY_FAILED = 1
    USAGE = 2
    IMAGE_ERROR = 3
    AUTH_ERROR = 4
    VULNDB_ERROR = 5
    OUTPUT_ERROR = 6
    CONSOLE_UNREACHABLE = 7
    DATABASE_ERROR = 8
    ENFORCER_ERROR = 9
    INTERNAL_ERROR = 70
    INTERRUPTED = 130


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success; for `scan`, the image was read (findings alone do not fail it)",
    ExitCode.POLICY_FAILED: (
        "a gate said no: `--fail-on` matched, or an enforce-mode policy failed while the "
        "pipeline enforces (`--enforce`)"
    ),
    ExitCode.USAGE: "bad command line: unknown option, bad value, unknown format",
    ExitCode.IMAGE_ERROR: (
        "the image could not be read: not found, malformed, digest mismatch, hostile layer"
    ),
    ExitCode.AUTH_ERROR: (
        "the registry refused the credentials, or needs some; or the console refused the token "
        "(401) or its role (403)"
    ),
    ExitCode.VULNDB_ERROR: "the vulnerability database is missing, corrupt, or failed to update",
    ExitCode.OUTPUT_ERROR: "a report could not be written",
    ExitCode.CONSOLE_UNREACHABLE: (
        "the console could not be reached or did not answer properly (no connection, timeout, "
        "5xx); reports are still written; `--no-fail-on-unreachable` makes it a warning (exit 0)"
    ),
    ExitCode.DATABASE_ERROR: (
        "the console's database cannot be used: unreachable, or at a schema this version does "
        "not know (see the message)"
    ),
    ExitCode.ENFORCER_ERROR: (
        "the enforcer cannot work: its state directory, socket, fanotify or admission listener "
        "cannot be set up (see the message)"
    ),
    ExitCode.INTERNAL_ERROR: "a bug in Tidegate: run again with `--debug` and report the traceback",
    ExitCode.INTERRUPTED: "stopped by Ctrl-C",
}


def exit_code_table() -> str:
    """The table as Markdown, for the README (a test keeps the README in step) and `--help`."""
    rows = ["| code | name | meaning |", "|---:|---|---|"]
    rows += [f"| {c.value} | `{c.name.lower()}` | {MEANINGS[c]} |" for c in ExitCode]
    return "\n".join(rows)
