"""A self-contained HTML report a developer opens from the build's artifacts.

The page answers, in order: may this image ship (the verdict, large), what stopped it (each failed
control with the findings behind it and the version that fixes them), and then what the scan
found (vulnerabilities, packages, secrets by location only, unknowns). It loads nothing: the CSS
is inline and a Content-Security-Policy forbids any fetch, so it renders the same from a CI
artifact store, a mail attachment or a disconnected laptop. Every text from the image or the
policy is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Final, TextIO

from tidegate.core.models import Finding, FixState, ScanResult
from tidegate.core.policy import ControlFailure, ImageStatus, Mode, PolicyResult, Verdict
from tidegate.report.common import (
    image_name,
    image_version,
    package_type_counts,
    severity_counts,
    sorted_findings,
    sorted_packages,
)
from tidegate.report.interface import ReportOptions
from tidegate.report.junit import control_outcomes

_CSS: Final = """
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #59636e; --line: #d1d9e0; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
  margin: 0; background: #f6f8fa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid var(--line);
  padding-bottom: 4px; }
h3 { font-size: 16px; margin: 0 0 6px; }
.meta { color: var(--muted); font-size: 13px; word-break: break-all; }
.verdict { border-radius: 8px; padding: 18px 22px; margin: 18px 0; color: #fff; }
.verdict .status { font-size: 34px; font-weight: 800; letter-spacing: 1px; }
.verdict .reason { font-size: 16px; margin-top: 4px; }
.verdict.approved { background: var(--ok); }
.verdict.disallowed, .verdict.failed { background: var(--bad); }
.verdict.none, .verdict.unscanned, .verdict.scanning { background: var(--muted); }
.card { background: #fff; border: 1px solid var(--line); border-left: 6px solid var(--bad);
  border-radius: 6px; padding: 14px 16px; margin: 12px 0; }
.card.audit { border-left-color: var(--warn); }
.fix { background: #dafbe1; border-radius: 4px; padding: 6px 10px; margin: 8px 0;
  font-weight: 600; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px;
  font-weight: 700; color: #fff; background: var(--muted); vertical-align: middle; }
.badge.enforce, .badge.fail, .badge.critical, .badge.high { background: var(--bad); }
.badge.audit, .badge.medium { background: var(--warn); }
.badge.pass { background: var(--ok); }
.badge.low { background: #0969da; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top;
  overflow-wrap: break-word; }
th { background: #eef1f4; }
td.num { text-align: right; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
.empty { color: var(--muted); font-style: italic; }
details summary { cursor: pointer; margin: 6px 0; }
"""


class HtmlWriter:
    """Self-contained HTML page: verdict, failed controls with fixes, then the findings."""

    name = "html"
    description = "self-contained HTML report: verdict, failed controls with fixes, findings"
    media_type = "text/html"
    file_extension = ".html"

    def write(
        self,
        result: ScanResult,
        out: TextIO,
        options: ReportOptions,
        verdict: Verdict | None = None,
    ) -> None:
        out.write(render(result, options, verdict))


def render(result: ScanResult, options: ReportOptions, verdict: Verdict | None = None) -> str:
    """The whole page as one string."""
    title = f"Tidegate report: {image_name(result)}"
    body = [
        _header(result, options),
        _verdict_banner(verdict),
        *(_verdict_sections(result, options, verdict) if verdict is not None else []),
        _findings_section(result),
        _packages_section(result),
        _secrets_section(result),
        _unknowns_section(result),
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            # Nothing may be fetched: the report must render the same anywhere, and an
            # injected tag that slipped past escaping still could not load anything.
            '<meta http-equiv="Content-Security-Policy" '
            "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body><main>",
            *body,
            "</main></body>",
            "</html>",
            "",
        ]
    )


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _header(result: ScanResult, options: ReportOptions) -> str:
    image = result.image
    os_info = result.catalogue.os
    facts = [
        f"digest <code>{_e(image_version(result))}</code>",
        f"OS {_e((os_info.pretty_name or os_info.id) if os_info else 'unknown')}",
        f"scanned {_e(result.scanned_at.isoformat())}",
        f"Tidegate {_e(options.tool_version)}",
    ]
    if result.db_snapshot:
        facts.append(f"DB snapshot {_e(result.db_snapshot)}")
    return (
        f"<header><h1>{_e(image.reference)}</h1>"
        f'<div class="meta">{" · ".join(facts)}</div></header>'
    )


def _verdict_banner(verdict: Verdict | None) -> str:
    if verdict is None:
        return (
            '<section class="verdict none" id="verdict"><div class="status">NO VERDICT</div>'
            '<div class="reason">Scanned without assurance policies: findings only.</div>'
            "</section>"
        )
    status = verdict.status.value
    return (
        f'<section class="verdict {_e(status)}" id="verdict">'
        f'<div class="status">{_e(status.upper())}</div>'
        f'<div class="reason">{_e(verdict.reason)}</div>'
        f'<div class="meta" style="color:#fff">evaluated {_e(verdict.evaluated_at.isoformat())}'
        + (f" · DB snapshot {_e(verdict.db_snapshot)}" if verdict.db_snapshot else "")
        + "</div></section>"
    )


def _verdict_sections(result: ScanResult, options: ReportOptions, verdict: Verdict) -> list[str]:
    sections = [_failed_controls(result, verdict), _policies_table(verdict, options)]
    acknowledged = [(r, a) for r in verdict.results for a in r.acknowledged]
    if acknowledged:
        rows = [
            [_e(a.finding), _e(r.policy_name), f"<code>{_e(a.ack_id)}</code>", _e(a.expires or "")]
            for r, a in acknowledged
        ]
        sections.append(
            '<section id="acknowledged"><h2>Acknowledged findings (set aside)</h2>'
            + _table(["Finding", "Policy", "Acknowledgement", "Expires"], rows)
            + "</section>"
        )
    return sections


def _failed_controls(result: ScanResult, verdict: Verdict) -> str:
    failed = [(r, f) for r in verdict.results for f in r.failures]
    if not failed:
        text = "No control failed." if verdict.status is ImageStatus.APPROVED else ""
        return (
            '<section id="failed-controls"><h2>Failed controls</h2>'
            f'<p class="empty">{text}</p></section>'
        )
    by_key = {_key(f): f for f in result.findings}
    cards = [_failure_card(policy, failure, by_key) for policy, failure in failed]
    return '<section id="failed-controls"><h2>Failed controls</h2>' + "".join(cards) + "</section>"


def _failure_card(policy: PolicyResult, failure: ControlFailure, by_key: dict[str, Finding]) -> str:
    mode = policy.mode.value
    effect = "blocks the image" if policy.mode is Mode.ENFORCE else "reported only (audit)"
    parts = [
        f'<article class="card {_e(mode)}" data-control="{_e(failure.control)}">',
        f"<h3><code>{_e(failure.control)}</code> — {_e(policy.policy_name)} "
        f'<span class="badge {_e(mode)}">{_e(mode)}</span></h3>',
        f'<div class="meta">policy {_e(policy.policy_id)} v{policy.policy_version}; {effect}</div>',
        f"<p>{_e(failure.message)}</p>",
    ]
    if failure.remediation:
        parts.append(f'<div class="fix">How to fix: {_e(failure.remediation)}</div>')
    if failure.findings:
        rows = [_finding_row(by_key.get(key), key) for key in failure.findings]
        headers = ["Vulnerability", "Package", "Installed", "Fixed version", "Severity"]
        parts.append(_table(headers, rows))
    parts.append("</article>")
    return "".join(parts)


def _finding_row(finding: Finding | None, key: str) -> list[str]:
    if finding is None:
        # The verdict may name a finding this result does not hold (e.g. another scan's).
        vid, _, package = key.partition(" ")
        name, _, version = package.rpartition("@")
        return [_e(vid), _e(name), _e(version), "", ""]
    return [
        _e(finding.id),
        _e(finding.package.name),
        _e(finding.package.version),
        _fixed(finding),
        _severity(finding),
    ]


def _policies_table(verdict: Verdict, options: ReportOptions) -> str:
    rows = []
    for result in verdict.results:
        outcomes = control_outcomes(result, options.policies)
        passed = ", ".join(o.control for o in outcomes if o.passed)
        failed = ", ".join(o.control for o in outcomes if not o.passed)
        badge = (
            '<span class="badge pass">pass</span>'
            if result.passed
            else ('<span class="badge fail">fail</span>')
        )
        rows.append(
            [
                f'{_e(result.policy_name)} <span class="meta">v{result.policy_version}</span>',
                f'<span class="badge {_e(result.mode.value)}">{_e(result.mode.value)}</span>',
                badge,
                _e(failed),
                _e(passed),
            ]
        )
    headers = ["Policy", "Mode", "Result", "Failed controls", "Passed controls"]
    return '<section id="policies"><h2>Policies</h2>' + _table(headers, rows) + "</section>"


def _findings_section(result: ScanResult) -> str:
    counts = ", ".join(f"{s.value} {n}" for s, n in severity_counts(result).items() if n)
    rows = [
        [
            _e(f.id),
            _e(f.package.name),
            _e(f.package.version),
            _fixed(f),
            _e(f.status.value),
            _severity(f),
            _e(f.summary),
        ]
        for f in sorted_findings(result)
    ]
    headers = ["Vulnerability", "Package", "Installed", "Fixed version", "Status", "Severity"]
    return (
        f'<section id="vulnerabilities"><h2>Vulnerabilities ({len(rows)})</h2>'
        + (f'<p class="meta">{_e(counts)}</p>' if counts else "")
        + _table([*headers, "Summary"], rows)
        + "</section>"
    )


def _packages_section(result: ScanResult) -> str:
    counts = package_type_counts(result)
    summary = _table(["Type", "Packages"], [[_e(t), str(n)] for t, n in counts.items()], num=1)
    rows = [
        [_e(p.name), _e(p.version), _e(p.type.value), _e(p.purl)] for p in sorted_packages(result)
    ]
    listing = (
        f"<details><summary>All {len(rows)} packages</summary>"
        + _table(["Name", "Version", "Type", "purl"], rows)
        + "</details>"
        if rows
        else ""
    )
    total = sum(counts.values())
    return f'<section id="packages"><h2>Packages ({total})</h2>{summary}{listing}</section>'


def _secrets_section(result: ScanResult) -> str:
    # Where and which rule only: the redacted hint identifies a secret without revealing it.
    secrets = sorted(result.catalogue.secrets, key=lambda s: (s.path, s.line or 0, s.rule_id))
    rows = [
        [
            _e(s.path),
            "" if s.line is None else str(s.line),
            _e(s.title),
            _e(s.severity),
            f"<code>{_e(s.redacted)}</code>",
        ]
        for s in secrets
    ]
    headers = ["Path", "Line", "Rule", "Severity", "Hint"]
    return f'<section id="secrets"><h2>Secrets ({len(rows)})</h2>{_table(headers, rows)}</section>'


def _unknowns_section(result: ScanResult) -> str:
    unknowns = sorted(result.catalogue.unknowns, key=lambda u: (u.where, u.reason))
    rows = [[_e(u.where), _e(u.analyzer or ""), _e(u.reason)] for u in unknowns]
    table = _table(["Where", "Analyzer", "Reason"], rows)
    return f'<section id="unknowns"><h2>Unknowns, not analysed ({len(rows)})</h2>{table}</section>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], num: int | None = None) -> str:
    """A table of already escaped cells; `num` is the index of a right-aligned column."""
    body = [
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i == num else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    ]
    if not body:
        return '<p class="empty">None.</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _fixed(finding: Finding) -> str:
    if finding.status is FixState.FIXED and finding.fixed_versions:
        return "<strong>" + _e(", ".join(finding.fixed_versions)) + "</strong>"
    return f'<span class="empty">{_e(finding.status.value)}</span>'


def _severity(finding: Finding) -> str:
    value = finding.severity.value
    score = f" {finding.score:.1f}" if finding.score is not None else ""
    return f'<span class="badge {_e(value)}">{_e(value)}</span>{_e(score)}'


def _key(finding: Finding) -> str:
    # The gate's name for a finding (core.assurance.finding_key).
    return f"{finding.id} {finding.package.name}@{finding.package.version}"
