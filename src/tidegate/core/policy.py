"""Image assurance policies, acknowledgements and verdicts: the values the assurance gate speaks.

One evaluation function (`core.assurance.evaluate`) turns an image and these values into a
`Verdict`; the console, the CI gate and admission all call it unchanged. Modes follow DESIGN.md:
a policy is `audit` or `enforce` (or audit until `enforce_after`); an image failing an enforcing
policy is disallowed, one failing only audit policies is approved with its failures listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NewType

from tidegate.core.models import (
    Finding,
    ImageFacts,
    Package,
    PackageType,
    ScanResult,
    Secret,
    Severity,
)

PolicyId = NewType("PolicyId", str)
AckId = NewType("AckId", str)


class Mode(StrEnum):
    AUDIT = "audit"
    ENFORCE = "enforce"


@dataclass(frozen=True, slots=True)
class LabelRule:
    key: str
    value: str | None = None
    """A glob over the label's value; None: any value (the key must be present)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which images a policy covers. Empty lists mean "any"; all non-empty criteria must hold
    (AND across kinds, OR within one kind)."""

    registries: tuple[str, ...] = ()
    """Globs over registry hosts ("registry.example.com", "*.internal:5000")."""
    repositories: tuple[str, ...] = ()
    """Globs over repository paths ("team-a/*", "library/nginx")."""
    labels: tuple[LabelRule, ...] = ()

    @property
    def is_global(self) -> bool:
        return not (self.registries or self.repositories or self.labels)


@dataclass(frozen=True, slots=True)
class SeverityLimit:
    max_severity: Severity
    """The highest severity allowed: a finding above it fails the control."""
    only_fixable: bool = False
    """Count only findings that have a fixed version."""


@dataclass(frozen=True, slots=True)
class ScoreLimit:
    max_score: float
    """The highest CVSS score allowed: a finding scored above it fails the control."""
    only_fixable: bool = False


@dataclass(frozen=True, slots=True)
class PackageRule:
    """A package that must not be in the image."""

    name: str
    versions: str | None = None
    """A constraint such as ">=1.0, <1.2.5" (the ecosystem's version order); None: any."""
    type: PackageType | None = None
    """Restrict to one ecosystem; None: any."""
    fix_available_days: int | None = None
    """Fail only when a fix for a vulnerability of this package has been out at least N days."""


@dataclass(frozen=True, slots=True)
class GracePeriod:
    """Vulnerabilities younger than this are not held against the image yet."""

    published_days: int | None = None
    """Ignore vulnerabilities published less than N days ago."""
    fixed_days: int | None = None
    """Ignore vulnerabilities whose fix was published less than N days ago."""


@dataclass(frozen=True, slots=True)
class Controls:
    """Every control is off (None / empty / False) unless set."""

    severity: SeverityLimit | None = None
    score: ScoreLimit | None = None
    cve_denylist: tuple[str, ...] = ()
    """These vulnerabilities (any of their ids) fail the image whatever their severity."""
    cve_allowlist: tuple[str, ...] = ()
    """These vulnerabilities are not held against the image by any control of this policy."""
    package_denylist: tuple[PackageRule, ...] = ()
    grace: GracePeriod | None = None
    block_root: bool = False
    """The image's configured user is root (uid 0), or cannot be resolved."""
    required_labels: tuple[LabelRule, ...] = ()
    forbidden_labels: tuple[LabelRule, ...] = ()
    allowed_registries: tuple[str, ...] = ()
    """Globs over registry hosts; empty: off."""
    trusted_base_images: tuple[str, ...] = ()
    """Globs over the base image name (org.opencontainers.image.base.name); empty: off."""
    block_secrets: bool = False
    """Secrets found in the image's files."""
    max_image_age_days: int | None = None
    """Images created longer ago than this fail."""


@dataclass(frozen=True, slots=True)
class AssurancePolicy:
    id: PolicyId
    name: str
    mode: Mode = Mode.AUDIT
    scope: Scope = field(default_factory=Scope)
    controls: Controls = field(default_factory=Controls)
    enforce_after: datetime | None = None
    """From this time on the policy enforces even if `mode` is audit (graduated rollout)."""
    enabled: bool = True
    version: int = 1
    description: str = ""

    def mode_at(self, now: datetime) -> Mode:
        if self.mode is Mode.ENFORCE:
            return Mode.ENFORCE
        if self.enforce_after is not None and now >= self.enforce_after:
            return Mode.ENFORCE
        return Mode.AUDIT


class AckScopeKind(StrEnum):
    GLOBAL = "global"
    REGISTRY = "registry"
    REPOSITORY = "repository"
    IMAGE = "image"


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """An exception: a vulnerability accepted for a scope, by someone, for a reason, for a time."""

    id: AckId
    vulnerability: str
    """A vulnerability id; it also covers the vulnerability's aliases."""
    scope: AckScopeKind
    scope_value: str | None
    """The registry host, repository path ("registry/repo" or "repo") or image digest; None for
    global."""
    requester: str
    justification: str
    created: datetime
    expires: datetime | None = None
    package_name: str | None = None
    package_version: str | None = None
    path: str | None = None
    """A glob over the package's location paths."""
    ticket: str | None = None
    approver: str | None = None
    revoked: datetime | None = None
    revoked_by: str | None = None

    def active(self, now: datetime) -> bool:
        if self.revoked is not None and self.revoked <= now:
            return False
        return self.expires is None or now < self.expires


class ImageStatus(StrEnum):
    UNSCANNED = "unscanned"
    SCANNING = "scanning"
    APPROVED = "approved"
    DISALLOWED = "disallowed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ControlFailure:
    """One control of one policy that the image fails, with the evidence behind it."""

    control: str
    """The control's name ("severity", "cve_denylist", "block_root" ...)."""
    message: str
    """What is wrong, in a sentence a developer can act on."""
    findings: tuple[str, ...] = ()
    """Keys of the findings behind it: "<vuln id> <package>@<version>"."""
    remediation: str = ""
    """How to fix it (e.g. "upgrade openssl to 3.0.11-1~deb12u2")."""


@dataclass(frozen=True, slots=True)
class AcknowledgedFinding:
    finding: str
    ack_id: AckId
    expires: datetime | None = None


@dataclass(frozen=True, slots=True)
class PolicyResult:
    policy_id: PolicyId
    policy_name: str
    policy_version: int
    mode: Mode
    """The mode in force at evaluation time (enforce_after applied)."""
    failures: tuple[ControlFailure, ...] = ()
    acknowledged: tuple[AcknowledgedFinding, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of assuring one image against every policy whose scope covers it."""

    status: ImageStatus
    """APPROVED or DISALLOWED."""
    results: tuple[PolicyResult, ...]
    evaluated_at: datetime
    db_snapshot: str | None = None

    @property
    def reason(self) -> str:
        """One line: which enforcing policies and controls disallowed the image, or why approved."""
        enforced = [r for r in self.results if not r.passed and r.mode is Mode.ENFORCE]
        if enforced:
            parts = [
                f"{r.policy_name}: {', '.join(f.control for f in r.failures)}" for r in enforced
            ]
            return "disallowed by " + "; ".join(parts)
        audit = [r for r in self.results if not r.passed]
        if audit:
            return f"approved; fails audit-mode policies: {', '.join(r.policy_name for r in audit)}"
        return "approved; passes every applicable policy"


@dataclass(frozen=True, slots=True)
class ImageSubject:
    """An image as the assurance gate sees it: identity from the inventory, content from a scan."""

    digest: str
    """Manifest digest (or the config digest when the image has no manifest, e.g. CI archives)."""
    registry: str | None = None
    repository: str | None = None
    tags: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    facts: ImageFacts = field(default_factory=ImageFacts)
    packages: tuple[Package, ...] = ()
    findings: tuple[Finding, ...] = ()
    secrets: tuple[Secret, ...] = ()

    @classmethod
    def from_scan(
        cls,
        result: ScanResult,
        *,
        registry: str | None = None,
        repository: str | None = None,
        tags: tuple[str, ...] = (),
    ) -> ImageSubject:
        info = result.image
        return cls(
            digest=info.manifest_digest or info.config_digest or "",
            registry=registry if registry is not None else info.registry,
            repository=repository if repository is not None else info.repository,
            tags=tags or ((info.tag,) if info.tag else ()),
            labels=result.facts.labels,
            facts=result.facts,
            packages=result.catalogue.packages,
            findings=result.findings,
            secrets=result.catalogue.secrets,
        )
