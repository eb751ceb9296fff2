"""The human report: a summary header and tables, rendered with rich for a terminal or a log.

Colour is used only on a terminal (or when forced); a CI log gets plain text of the same layout.
When the scan has findings the report lists them; otherwise it lists the packages, since "what is
in this image" is then the useful answer. With the gate's verdict, the verdict comes first: its
status, each applicable policy with its mode, and every failed control with its fix. Whether a
failure would fail the build in enforce mode is the command's message, not the report's.
"""

from __future__ import annotations

import io
import os
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tidegate.core.models import FixState, ScanResult, Severity
from tidegate.core.policy import ImageStatus, Verdict
from tidegate.report.common import (
    image_version,
    package_type_counts,
    severity_counts,
    sorted_findings,
    sorted_packages,
)
from tidegate.report.interface import ReportOptions

_SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "blue",
    Severity.NEGLIGIBLE: "dim",
    Severity.UNKNOWN: "dim",
}


class TableWriter:
    """Summary and tables for people."""

    name = "table"
    description = "human-readable summary and tables (the default on a terminal)"
    media_type = "text/plain"
    file_extension = ".txt"

    def write(
        self,
        result: ScanResult,
        out: TextIO,
        options: ReportOptions,
        verdict: Verdict | None = None,
    ) -> None:
        buffer = io.StringIO()
        console = _console(buffer, out, options)
        if verdict is not None:
            for part in _verdict_sections(verdict):
                console.print(part)
                console.print()
        console.print(_summary(result))
        for section in _sections(result, options):
            console.print()
            console.print(section)
        # rich pads every line to the table width; trailing blanks only clutter logs and diffs.
        out.writelines(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def _sections(result: ScanResult, options: ReportOptions) -> list[Table]:
    """Findings when there are any, else packages; the executables when asked for; then
    secrets and unknowns when present."""
    sections: list[Table] = []
    if result.findings:
        sections.append(_findings_table(result))
    elif result.catalogue.packages:
        sections.append(_packages_table(result))
    if options.include_executables and result.catalogue.executables:
        sections.append(_executables_table(result))
    if result.catalogue.secrets:
        sections.append(_secrets_table(result))
    if result.catalogue.unknowns:
        sections.append(_unknowns_table(result))
    return sections


def _verdict_sections(verdict: Verdict) -> list[Table]:
    """The verdict line, the policies with their modes, then the failed controls (if any)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    style = "bold green" if verdict.status is ImageStatus.APPROVED else "bold red"
    grid.add_row("Verdict", Text(verdict.status.value.upper(), style=style))
    grid.add_row("Reason", verdict.reason)
    sections = [grid]
    if verdict.results:
        sections.append(_policies_table(verdict))
    if any(not r.passed for r in verdict.results):
        sections.append(_failures_table(verdict))
    return sections


def _policies_table(verdict: Verdict) -> Table:
    table = _table("Policies")
    table.add_column("Policy", overflow="fold")
    table.add_column("Mode", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("Failed controls", overflow="fold")
    table.add_column("Acknowledged", justify="right", no_wrap=True)
    for result in verdict.results:
        outcome = Text("pass", style="green") if result.passed else Text("FAIL", style="red")
        failed = ", ".join(f.control for f in result.failures)
        table.add_row(
            f"{result.policy_name} (v{result.policy_version})",
            result.mode.value,
            outcome,
            failed,
            str(len(result.acknowledged)),
        )
    return table


def _failures_table(verdict: Verdict) -> Table:
    table = _table("Failed controls")
    table.add_column("Policy", overflow="fold")
    table.add_column("Mode", no_wrap=True)
    table.add_column("Control", no_wrap=True)
    table.add_column("Problem", overflow="fold")
    table.add_column("Fix", overflow="fold")
    for result in verdict.results:
        for failure in result.failures:
            table.add_row(
                result.policy_name,
                result.mode.value,
                failure.control,
                failure.message,
                failure.remediation,
            )
    return table


def _console(buffer: TextIO, out: TextIO, options: ReportOptions) -> Console:
    """A console rendering into `buffer` with the colour and width `out` and `options` call for."""
    is_tty = out.isatty()
    color = is_tty if options.color is None else options.color
    width = options.width or (_terminal_width(out) if is_tty else 100)
    return Console(
        file=buffer,
        width=width,
        force_terminal=color,
        no_color=not color,
        color_system="auto" if color else None,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )


def _terminal_width(out: TextIO) -> int:
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError):
        return 100


def _summary(result: ScanResult) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    image = result.image
    grid.add_row("Image", image.reference)
    grid.add_row("Digest", image_version(result))
    if image.config_digest and image.config_digest != image.manifest_digest:
        grid.add_row("Image ID", image.config_digest)
    os_info = result.catalogue.os
    grid.add_row("OS", (os_info.pretty_name or os_info.id) if os_info else "unknown")
    grid.add_row("User", _user(result))
    counts = package_type_counts(result)
    by_type = ", ".join(f"{k} {v}" for k, v in counts.items())
    grid.add_row("Packages", f"{sum(counts.values())}" + (f" ({by_type})" if by_type else ""))
    grid.add_row("Findings", _findings_summary(result))
    grid.add_row("Secrets", str(len(result.catalogue.secrets)))
    grid.add_row("Unknowns", str(len(result.catalogue.unknowns)))
    if result.db_snapshot:
        grid.add_row("DB snapshot", result.db_snapshot)
    return grid


def _user(result: ScanResult) -> str:
    facts = result.facts
    user = facts.user or "(root by default)"
    if facts.runs_as_root is None:
        return f"{user}, unresolved"
    return f"{user}, runs as root" if facts.runs_as_root else f"{user}, uid {facts.uid}"


def _findings_summary(result: ScanResult) -> Text:
    total = len(result.findings)
    text = Text(str(total))
    parts = [(s, n) for s, n in severity_counts(result).items() if n]
    if parts:
        text.append(" (")
        for i, (severity, n) in enumerate(parts):
            if i:
                text.append(", ")
            text.append(f"{severity.value} {n}", style=_SEVERITY_STYLE[severity])
        text.append(")")
    return text


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, expand=False)


def _findings_table(result: ScanResult) -> Table:
    table = _table("Vulnerabilities")
    table.add_column("ID", no_wrap=True)
    table.add_column("Package", overflow="fold")
    table.add_column("Installed", overflow="fold")
    table.add_column("Fixed in", overflow="fold")
    table.add_column("Status", no_wrap=True)
    table.add_column("Severity", no_wrap=True)
    for finding in sorted_findings(result):
        fixed = ", ".join(finding.fixed_versions) if finding.status is FixState.FIXED else ""
        severity = Text(finding.severity.value, style=_SEVERITY_STYLE[finding.severity])
        table.add_row(
            finding.id,
            finding.package.name,
            finding.package.version,
            fixed,
            finding.status.value,
            severity,
        )
    return table


def _packages_table(result: ScanResult) -> Table:
    table = _table("Packages")
    table.add_column("Name", overflow="fold")
    table.add_column("Version", overflow="fold")
    table.add_column("Type", no_wrap=True)
    table.add_column("Source", overflow="fold")
    for package in sorted_packages(result):
        source = package.source_name or ""
        if source and package.source_version and package.source_version != package.version:
            source = f"{source} {package.source_version}"
        table.add_row(package.name, package.version, package.type.value, source)
    return table


def _executables_table(result: ScanResult) -> Table:
    table = _table("Executables")
    table.add_column("Path", overflow="fold")
    table.add_column("Mode", no_wrap=True)
    table.add_column("Size", justify="right", no_wrap=True)
    table.add_column("SHA-256", no_wrap=True)
    table.add_column("Flags", no_wrap=True)
    for exe in result.catalogue.executables:
        flags = " ".join(f for f, on in (("setuid", exe.setuid), ("setgid", exe.setgid)) if on)
        table.add_row(exe.path, f"{exe.mode:04o}", str(exe.size), exe.sha256[:16], flags)
    return table


def _secrets_table(result: ScanResult) -> Table:
    table = _table("Secrets")
    table.add_column("Path", overflow="fold")
    table.add_column("Line", justify="right", no_wrap=True)
    table.add_column("Rule", overflow="fold")
    table.add_column("Severity", no_wrap=True)
    table.add_column("Hint", overflow="fold")
    secrets = sorted(result.catalogue.secrets, key=lambda s: (s.path, s.line or 0, s.rule_id))
    for secret in secrets:
        line = "" if secret.line is None else str(secret.line)
        table.add_row(secret.path, line, secret.title, secret.severity, secret.redacted)
    return table


def _unknowns_table(result: ScanResult) -> Table:
    table = _table("Unknowns (not analysed)")
    table.add_column("Where", overflow="fold")
    table.add_column("Analyzer", no_wrap=True)
    table.add_column("Reason", overflow="fold")
    unknowns = sorted(result.catalogue.unknowns, key=lambda u: (u.where, u.reason))
    for unknown in unknowns:
        table.add_row(unknown.where, unknown.analyzer or "", unknown.reason)
    return table
