"""Ignore rules (`.tidegateignore.yaml`) and report filters: which findings a report leaves out.

An ignore rule names a vulnerability (any of its ids: CVE, GHSA, distro ids), optionally narrowed
to packages (name or purl prefix) and paths (globs), with an optional expiry and a reason. An
expired rule hides nothing, and the outcome says so, so nobody is silently left exposed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase

from tidegate.core.models import Finding, FixState, Severity


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    id: str
    """A vulnerability id; it also covers the vulnerability's aliases."""
    packages: tuple[str, ...] = ()
    """Package names or purl prefixes ("pkg:deb/debian/openssl"); empty: any package."""
    paths: tuple[str, ...] = ()
    """Globs over the package's location paths; empty: anywhere."""
    expires: datetime | None = None
    reason: str = ""

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and self.expires <= now

    def covers(self, finding: Finding) -> bool:
        if self.id != finding.id and self.id not in finding.aliases:
            return False
        pkg = finding.package
        if self.packages and not any(
            p == pkg.name or (p.startswith("pkg:") and pkg.purl.startswith(p))
            for p in self.packages
        ):
            return False
        if self.paths:
            locations = [loc.path for loc in pkg.locations]
            return any(fnmatchcase(path, g) for g in self.paths for path in locations)
        return True


@dataclass(frozen=True, slots=True)
class FindingFilter:
    """What a report shows: severities, unfixed or not, and the ignore rules."""

    severities: frozenset[Severity] = frozenset()
    """Empty: every severity."""
    ignore_unfixed: bool = False
    rules: tuple[IgnoreRule, ...] = ()


@dataclass(frozen=True, slots=True)
class FilterOutcome:
    kept: tuple[Finding, ...]
    ignored: tuple[tuple[Finding, IgnoreRule], ...] = ()
    filtered_out: int = 0
    """Findings left out by severity or by `ignore_unfixed`."""
    expired_rules: tuple[IgnoreRule, ...] = field(default=())
    """Rules past their expiry: they hid nothing."""


def filter_findings(
    findings: Iterable[Finding], spec: FindingFilter, now: datetime
) -> FilterOutcome:
    live = [r for r in spec.rules if not r.expired(now)]
    expired = tuple(r for r in spec.rules if r.expired(now))
    kept: list[Finding] = []
    ignored: list[tuple[Finding, IgnoreRule]] = []
    filtered_out = 0
    for finding in findings:
        if spec.severities and finding.severity not in spec.severities:
            filtered_out += 1
            continue
        if spec.ignore_unfixed and finding.status is not FixState.FIXED:
            filtered_out += 1
            continue
        rule = _first_covering(live, finding)
        if rule is not None:
            ignored.append((finding, rule))
            continue
        kept.append(finding)
    return FilterOutcome(tuple(kept), tuple(ignored), filtered_out, expired)


def _first_covering(rules: Sequence[IgnoreRule], finding: Finding) -> IgnoreRule | None:
    return next((r for r in rules if r.covers(finding)), None)
