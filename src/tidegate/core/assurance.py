"""Image assurance: the one pure function that turns an image and the policies into a verdict.

`evaluate` is used unchanged by the console, the CI gate and admission (DESIGN.md, step 4):

1. the applicable policies are the enabled ones whose scope covers the image;
2. findings covered by an active acknowledgement are set aside, and listed as acknowledged;
3. each policy's controls run in `CONTROL_NAMES` order: first the filters (grace periods, the
   CVE allow list) narrow the findings the policy holds against the image, then every enabled
   control yields at most one `ControlFailure` with a message, the findings behind it and a fix;
4. the image is DISALLOWED when a policy in enforce mode (at `now`) fails, else APPROVED.

No I/O, no clock: time comes in as `now`. Whether a failure blocks at an enforcement point is the
mode rule's business (`core.modes`), not this module's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from functools import lru_cache

from tidegate.core.constraints import ConstraintError, parse_constraint, version_kind
from tidegate.core.errors import VersionError
from tidegate.core.models import Finding, Package, PackageType
from tidegate.core.policy import (
    AcknowledgedFinding,
    Acknowledgement,
    AckScopeKind,
    AssurancePolicy,
    ControlFailure,
    Controls,
    ImageStatus,
    ImageSubject,
    LabelRule,
    Mode,
    PackageRule,
    PolicyResult,
    Scope,
    Verdict,
)
from tidegate.core.versions import compare

__all__ = [
    "CONTROL_NAMES",
    "acknowledgement_covers",
    "applicable_policies",
    "evaluate",
    "explain_controls",
    "finding_key",
    "remediation",
    "scope_covers",
]


# --- identity helpers -------------------------------------------------------------------------


def finding_key(finding: Finding) -> str:
    """ "CVE-2023-5678 libssl3@3.0.9-1": how failures and acknowledgements name a finding."""
    return f"{finding.id} {finding.package.name}@{finding.package.version}"


@lru_cache(maxsize=65536)
def _ids(id_: str, aliases: tuple[str, ...]) -> frozenset[str]:
    # Ids are compared case-insensitively: feeds and people spell "cve-" and "GHSA-" freely.
    return frozenset(i.casefold() for i in (id_, *aliases))


def _finding_ids(finding: Finding) -> frozenset[str]:
    return _ids(finding.id, finding.aliases)


@lru_cache(maxsize=1024)
def _id_set(ids: tuple[str, ...]) -> frozenset[str]:
    return frozenset(i.strip().casefold() for i in ids)


def _utc(moment: datetime) -> datetime:
    # Naive times (from hand-written YAML, old records) are taken as UTC so comparisons never raise.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _active(ack: Acknowledgement, now: datetime) -> bool:
    if (ack.expires is not None and ack.expires.tzinfo is None) or (
        ack.revoked is not None and ack.revoked.tzinfo is None
    ):
        expires = _utc(ack.expires) if ack.expires is not None else None
        revoked = _utc(ack.revoked) if ack.revoked is not None else None
        ack = dataclasses.replace(ack, expires=expires, revoked=revoked)
    return ack.active(now)


def _mode_at(policy: AssurancePolicy, now: datetime) -> Mode:
    if policy.enforce_after is not None and policy.enforce_after.tzinfo is None:
        policy = dataclasses.replace(policy, enforce_after=_utc(policy.enforce_after))
    return policy.mode_at(now)


def _label_matches(rule: LabelRule, labels: dict[str, str]) -> bool:
    value = labels.get(rule.key)
    if value is None:
        return False
    return rule.value is None or fnmatchcase(value, rule.value)


def _repository_names(subject: ImageSubject) -> tuple[str, ...]:
    """The names a repository glob or scope may use: "repo" and "registry/repo"."""
    if subject.repository is None:
        return ()
    if subject.registry is None:
        return (subject.repository,)
    return (subject.repository, f"{subject.registry}/{subject.repository}")


# --- scope and acknowledgements ---------------------------------------------------------------


def scope_covers(scope: Scope, subject: ImageSubject) -> bool:
    """AND across kinds (registries, repositories, labels), OR within one; global covers all."""
    if scope.registries and not (
        subject.registry is not None
        and any(fnmatchcase(subject.registry, g) for g in scope.registries)
    ):
        return False
    if scope.repositories:
        names = _repository_names(subject)
        if not any(fnmatchcase(n, g) for n in names for g in scope.repositories):
            return False
    if scope.labels:
        labels = dict(subject.labels)
        if not any(_label_matches(rule, labels) for rule in scope.labels):
            return False
    return True


def applicable_policies(
    subject: ImageSubject, policies: Iterable[AssurancePolicy]
) -> list[AssurancePolicy]:
    """The enabled policies whose scope covers the image, by name (then id) for a stable order."""
    chosen = [p for p in policies if p.enabled and scope_covers(p.scope, subject)]
    return sorted(chosen, key=lambda p: (p.name, p.id))


def _ack_scope_covers(ack: Acknowledgement, subject: ImageSubject) -> bool:
    match ack.scope:
        case AckScopeKind.GLOBAL:
            return True
        case AckScopeKind.REGISTRY:
            return ack.scope_value is not None and ack.scope_value == subject.registry
        case AckScopeKind.REPOSITORY:
            return ack.scope_value in _repository_names(subject)
        case AckScopeKind.IMAGE:
            return ack.scope_value is not None and ack.scope_value == subject.digest
    return False  # an unknown scope kind (newer console, older gate) covers nothing


def _ack_package_covers(ack: Acknowledgement, package: Package) -> bool:
    # A package name may name the binary package or its source ("openssl" covers libssl3).
    if ack.package_name is not None and ack.package_name not in (
        package.name,
        package.source_name,
    ):
        return False
    if ack.package_version is not None and ack.package_version != package.version:
        return False
    if ack.path is not None:
        pattern = ack.path
        return any(fnmatchcase(loc.path, pattern) for loc in package.locations)
    return True


def acknowledgement_covers(
    ack: Acknowledgement, subject: ImageSubject, finding: Finding, now: datetime
) -> bool:
    """Whether `ack` sets `finding` of `subject` aside at `now` (the same test at every gate)."""
    return (
        _active(ack, _utc(now))
        and _ack_scope_covers(ack, subject)
        and ack.vulnerability.strip().casefold() in _finding_ids(finding)
        and _ack_package_covers(ack, finding.package)
    )


def _ack_order(ack: Acknowledgement) -> tuple[bool, datetime, str]:
    # The longest-lasting acknowledgement is reported: it says when the finding counts again.
    expires = _utc(ack.expires) if ack.expires is not None else datetime.max.replace(tzinfo=UTC)
    return (ack.expires is None, expires, ack.id)


def _set_aside(
    subject: ImageSubject, acks: Sequence[Acknowledgement], now: datetime
) -> tuple[list[Finding], tuple[AcknowledgedFinding, ...]]:
    """Split the findings into those held against the image and those acknowledged."""
    live = [a for a in acks if _active(a, now) and _ack_scope_covers(a, subject)]
    by_vuln: dict[str, list[Acknowledgement]] = {}
    for ack in live:
        by_vuln.setdefault(ack.vulnerability.strip().casefold(), []).append(ack)
    held: list[Finding] = []
    acknowledged: dict[tuple[str, str], AcknowledgedFinding] = {}
    for finding in subject.findings:
        cover = _covering_ack(finding, by_vuln) if by_vuln else None
        if cover is None:
            held.append(finding)
            continue
        key = finding_key(finding)
        acknowledged.setdefault((key, cover.id), AcknowledgedFinding(key, cover.id, cover.expires))
    return held, tuple(acknowledged[k] for k in sorted(acknowledged))


def _covering_ack(
    finding: Finding, by_vuln: dict[str, list[Acknowledgement]]
) -> Acknowledgement | None:
    candidates = [a for i in _finding_ids(finding) for a in by_vuln.get(i, ())]
    candidates.sort(key=_ack_order, reverse=True)
    for ack in candidates:
        if _ack_package_covers(ack, finding.package):
            return ack
    return None


# --- remediation ------------------------------------------------------------------------------


def _fix_for(finding: Finding) -> str | None:
    package = finding.package
    return _lowest_fix(package.type, package.version, finding.fixed_versions)


@lru_cache(maxsize=65536)
def _lowest_fix(ptype: PackageType, installed: str, fixed: tuple[str, ...]) -> str | None:
    """The lowest fixed version above the installed one (several ranges may offer fixes).

    Cached: re-evaluating a fleet meets the same package versions and fixes again and again.
    """
    if not fixed:
        return None
    kind = version_kind(ptype)
    try:
        above = [v for v in fixed if compare(kind, v, installed) > 0]
        candidates = above or list(fixed)
        best = candidates[0]
        for version in candidates[1:]:
            if compare(kind, version, best) < 0:
                best = version
    except VersionError:
        return fixed[0]
    return best


def _package_label(package: Package) -> str:
    if package.source_name and package.source_name != package.name:
        return f"{package.source_name} ({package.name})"
    return package.name


def remediation(findings: Sequence[Finding]) -> str:
    """How to fix these findings: per package, the version that fixes all of its findings.

    "upgrade openssl (libssl3) to 3.0.11-1~deb12u2; no fix is available yet for zlib1g".
    """
    fixes: dict[tuple[PackageType, str, str], str | None] = {}
    labels: dict[tuple[PackageType, str, str], str] = {}
    for finding in findings:
        pkg = finding.package
        key = (pkg.type, pkg.name, pkg.version)
        labels[key] = _package_label(pkg)
        fixes[key] = _highest(pkg.type, fixes.get(key), _fix_for(finding))
    upgrades = [f"upgrade {labels[k]} to {v}" for k, v in sorted(fixes.items()) if v is not None]
    unfixed = sorted({labels[k] for k, v in fixes.items() if v is None})
    if unfixed:
        upgrades.append(f"no fix is available yet for {', '.join(unfixed)}")
    return "; ".join(upgrades)


@lru_cache(maxsize=65536)
def _highest(ptype: PackageType, a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a if b is None else b
    try:
        return a if compare(version_kind(ptype), a, b) >= 0 else b
    except VersionError:
        return a


# --- the controls -----------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Image:
    """What the controls of one policy look at: the image and the findings held against it."""

    subject: ImageSubject
    now: datetime
    labels: dict[str, str]
    findings: list[Finding]
    evidence: dict[tuple[int, ...], tuple[tuple[str, ...], str]]
    """Keys and remediation per set of findings, shared by the policies of one evaluation:
    policies with similar controls fail on the same findings, and the fix is worked out once."""


def _evidence(image: _Image, findings: list[Finding]) -> tuple[tuple[str, ...], str]:
    # Identity is enough: every finding object belongs to the subject for the whole evaluation.
    memo_key = tuple(id(f) for f in findings)
    known = image.evidence.get(memo_key)
    if known is None:
        keys = tuple(dict.fromkeys(finding_key(f) for f in findings))
        known = image.evidence[memo_key] = (keys, remediation(findings))
    return known


def _vulnerability_failure(
    image: _Image, control: str, message: str, findings: list[Finding]
) -> ControlFailure:
    keys, fix = _evidence(image, findings)
    return ControlFailure(control, message, keys, fix)


def _count(findings: list[Finding]) -> str:
    return "1 vulnerability" if len(findings) == 1 else f"{len(findings)} vulnerabilities"


def _check_severity(image: _Image, controls: Controls) -> ControlFailure | None:
    limit = controls.severity
    if limit is None:
        return None
    rank = limit.max_severity.rank
    bad = [
        f
        for f in image.findings
        if f.severity.rank > rank and (f.fixed_versions or not limit.only_fixable)
    ]
    if not bad:
        return None
    fixable = " fixable" if limit.only_fixable else ""
    return _vulnerability_failure(
        image,
        "severity",
        f"{_count(bad)}{fixable} above the maximum severity {limit.max_severity.value}",
        bad,
    )


def _check_score(image: _Image, controls: Controls) -> ControlFailure | None:
    limit = controls.score
    if limit is None:
        return None
    bad = [
        f
        for f in image.findings
        if f.score is not None
        and f.score > limit.max_score
        and (f.fixed_versions or not limit.only_fixable)
    ]
    if not bad:
        return None
    fixable = " fixable" if limit.only_fixable else ""
    return _vulnerability_failure(
        image,
        "score",
        f"{_count(bad)}{fixable} scored above the maximum CVSS score {limit.max_score}",
        bad,
    )


def _check_cve_denylist(image: _Image, controls: Controls) -> ControlFailure | None:
    if not controls.cve_denylist:
        return None
    denied = _id_set(controls.cve_denylist)
    bad = [f for f in image.findings if not denied.isdisjoint(_finding_ids(f))]
    if not bad:
        return None
    ids = ", ".join(sorted({f.id for f in bad}))
    message = f"denied vulnerabilities present: {ids}"
    return _vulnerability_failure(image, "cve_denylist", message, bad)


def _name_matches(rule: PackageRule, package: Package) -> bool:
    if rule.type is not None and rule.type != package.type:
        return False
    if package.type is PackageType.PYPI:
        return _pypi_name(rule.name) == _pypi_name(package.name)
    return rule.name == package.name


def _pypi_name(name: str) -> str:
    # PEP 503 normalisation: "Django", "django_" and "django." are the same project.
    return "-".join(part for part in name.lower().replace("_", "-").replace(".", "-").split("-"))


def _package_denied(rule: PackageRule, package: Package) -> tuple[bool, str]:
    """(denied, why): a version that cannot be compared is denied, saying so."""
    if not _name_matches(rule, package):
        return False, ""
    if rule.versions is None:
        return True, f"{package.name}@{package.version} ({package.type.value})"
    try:
        hit = parse_constraint(rule.versions).matches(version_kind(package.type), package.version)
    except (VersionError, ConstraintError) as exc:
        # Fail closed: the API refuses bad constraints, but a deny list must never open up
        # because a version (or a constraint stored before validation) cannot be read.
        return True, (
            f"{package.name}@{package.version} ({package.type.value}): cannot tell whether it "
            f"matches {rule.versions!r} ({exc})"
        )
    return hit, f"{package.name}@{package.version} ({package.type.value}, {rule.versions})"


def _old_fixes(image: _Image, package: Package, days: int) -> list[Finding]:
    cutoff = image.now - timedelta(days=days)
    return [
        f
        for f in image.findings
        if f.package.key == package.key
        and f.fix_published is not None
        and _utc(f.fix_published) <= cutoff
    ]


def _check_package_denylist(image: _Image, controls: Controls) -> ControlFailure | None:
    if not controls.package_denylist:
        return None
    reasons: list[str] = []
    behind: list[Finding] = []
    for rule in controls.package_denylist:
        for package in image.subject.packages:
            denied, why = _package_denied(rule, package)
            if not denied:
                continue
            if rule.fix_available_days is not None:
                old = _old_fixes(image, package, rule.fix_available_days)
                if not old:
                    continue
                why += f", a fix out for at least {rule.fix_available_days} days"
                behind.extend(old)
            reasons.append(why)
    if not reasons:
        return None
    reasons = list(dict.fromkeys(reasons))
    keys, fix = _evidence(image, behind)
    fix = fix or "remove the denied packages or replace them"
    return ControlFailure(
        "package_denylist", f"denied packages present: {'; '.join(reasons)}", keys, fix
    )


def _check_block_root(image: _Image, controls: Controls) -> ControlFailure | None:
    if not controls.block_root:
        return None
    facts = image.subject.facts
    fix = "set a non-root USER with a numeric uid in the image (e.g. USER 10001)"
    if facts.runs_as_root is None:
        return ControlFailure(
            "block_root",
            f"could not resolve the image's user {facts.user!r} to a uid (not in the image's "
            "/etc/passwd), so it cannot be shown not to run as root",
            remediation=fix,
        )
    if not facts.runs_as_root:
        return None
    user = f"user {facts.user!r} is uid 0" if facts.user else "no USER is set"
    return ControlFailure("block_root", f"the image runs as root ({user})", remediation=fix)


def _rule_text(rule: LabelRule) -> str:
    return rule.key if rule.value is None else f"{rule.key}={rule.value}"


def _check_required_labels(image: _Image, controls: Controls) -> ControlFailure | None:
    missing = [r for r in controls.required_labels if not _label_matches(r, image.labels)]
    if not missing:
        return None
    names = ", ".join(_rule_text(r) for r in missing)
    return ControlFailure(
        "required_labels",
        f"required labels missing or with a wrong value: {names}",
        remediation=f"add the labels to the image (LABEL in the Dockerfile): {names}",
    )


def _check_forbidden_labels(image: _Image, controls: Controls) -> ControlFailure | None:
    present = [r for r in controls.forbidden_labels if _label_matches(r, image.labels)]
    if not present:
        return None
    found = ", ".join(f"{r.key}={image.labels[r.key]}" for r in present)
    return ControlFailure(
        "forbidden_labels",
        f"forbidden labels present: {found}",
        remediation="remove these labels from the image and its base image",
    )


def _check_allowed_registries(image: _Image, controls: Controls) -> ControlFailure | None:
    allowed = controls.allowed_registries
    if not allowed:
        return None
    registry = image.subject.registry
    names = ", ".join(allowed)
    if registry is None:
        return ControlFailure(
            "allowed_registries",
            f"the image has no registry (e.g. a local archive), so it cannot be shown to come "
            f"from an allowed registry ({names})",
            remediation=f"push the image to an allowed registry ({names}) and scan it there",
        )
    if any(fnmatchcase(registry.lower(), g.lower()) for g in allowed):
        return None
    return ControlFailure(
        "allowed_registries",
        f"registry {registry} is not an allowed registry ({names})",
        remediation=f"push the image to an allowed registry ({names})",
    )


def _base_names(base: str) -> tuple[str, ...]:
    """The base image name as written, and without its digest and tag, for globs of either."""
    bare = base.split("@", 1)[0]
    slash = bare.rfind("/")
    colon = bare.rfind(":")
    untagged = bare[:colon] if colon > slash else bare
    return tuple(dict.fromkeys((base, bare, untagged)))


def _check_trusted_base_images(image: _Image, controls: Controls) -> ControlFailure | None:
    trusted = controls.trusted_base_images
    if not trusted:
        return None
    base = image.subject.facts.base_image
    names = ", ".join(trusted)
    fix = f"build FROM a trusted base image ({names})"
    if base is None:
        return ControlFailure(
            "trusted_base_images",
            "the base image is unknown (no org.opencontainers.image.base.name annotation or "
            f"label), so it cannot be shown to be a trusted one ({names})",
            remediation=fix + " and record it in org.opencontainers.image.base.name",
        )
    if any(fnmatchcase(n, g) for n in _base_names(base) for g in trusted):
        return None
    return ControlFailure(
        "trusted_base_images", f"base image {base} is not trusted ({names})", remediation=fix
    )


def _check_block_secrets(image: _Image, controls: Controls) -> ControlFailure | None:
    if not controls.block_secrets or not image.subject.secrets:
        return None
    # Where and which rule only: the secret's value never leaves the scanner.
    found = sorted({f"{s.path} ({s.rule_id})" for s in image.subject.secrets})
    return ControlFailure(
        "block_secrets",
        f"{len(found)} secret(s) found in the image: {', '.join(found)}",
        remediation="remove the secrets from the image (use build secrets or runtime "
        "configuration) and rotate them",
    )


def _check_max_image_age(image: _Image, controls: Controls) -> ControlFailure | None:
    days = controls.max_image_age_days
    if days is None:
        return None
    created = image.subject.facts.created
    fix = "rebuild the image from an up-to-date base image"
    if created is None:
        return ControlFailure(
            "max_image_age_days",
            f"the image's creation time is unknown, so it cannot be shown to be at most {days} "
            "days old",
            remediation=fix + " with a creation time in its config",
        )
    age = image.now - _utc(created)
    if age <= timedelta(days=days):
        return None
    return ControlFailure(
        "max_image_age_days",
        f"the image was created {created.date().isoformat()}, {age.days} days ago "
        f"(at most {days} allowed)",
        remediation=fix,
    )


# --- the filters and the policy loop ----------------------------------------------------------


def _held_by_policy(findings: list[Finding], controls: Controls, now: datetime) -> list[Finding]:
    """Findings this policy holds against the image: grace periods and the allow list removed."""
    grace = controls.grace
    allowed = _id_set(controls.cve_allowlist) if controls.cve_allowlist else frozenset()
    if grace is None and not allowed:
        return findings
    published_cut = fixed_cut = None
    if grace is not None and grace.published_days is not None:
        published_cut = now - timedelta(days=grace.published_days)
    if grace is not None and grace.fixed_days is not None:
        fixed_cut = now - timedelta(days=grace.fixed_days)
    held = []
    for f in findings:
        if _younger(f.published, published_cut) or _younger(f.fix_published, fixed_cut):
            continue
        if allowed and not allowed.isdisjoint(_finding_ids(f)):
            continue
        held.append(f)
    return held


def _younger(moment: datetime | None, cut: datetime | None) -> bool:
    """Whether a known time is after the cut (an unknown time never earns a grace period)."""
    return cut is not None and moment is not None and _utc(moment) > cut


_Check = Callable[[_Image, Controls], ControlFailure | None]

_CHECKS: tuple[tuple[str, _Check], ...] = (
    ("severity", _check_severity),
    ("score", _check_score),
    ("cve_denylist", _check_cve_denylist),
    ("package_denylist", _check_package_denylist),
    ("block_root", _check_block_root),
    ("required_labels", _check_required_labels),
    ("forbidden_labels", _check_forbidden_labels),
    ("allowed_registries", _check_allowed_registries),
    ("trusted_base_images", _check_trusted_base_images),
    ("block_secrets", _check_block_secrets),
    ("max_image_age_days", _check_max_image_age),
)

CONTROL_NAMES: tuple[str, ...] = ("grace", "cve_allowlist", *(name for name, _ in _CHECKS))
"""Every control, in evaluation order: the two filters first, then the checks."""


def _evaluate_policy(
    policy: AssurancePolicy,
    base: _Image,
    acknowledged: tuple[AcknowledgedFinding, ...],
) -> PolicyResult:
    """`base` holds the findings left after acknowledgements; the policy narrows them further."""
    controls = policy.controls
    now = base.now
    image = dataclasses.replace(base, findings=_held_by_policy(base.findings, controls, now))
    failures = tuple(
        failure for _, check in _CHECKS if (failure := check(image, controls)) is not None
    )
    return PolicyResult(
        policy_id=policy.id,
        policy_name=policy.name,
        policy_version=policy.version,
        mode=_mode_at(policy, now),
        failures=failures,
        acknowledged=acknowledged,
    )


def evaluate(
    subject: ImageSubject,
    policies: Sequence[AssurancePolicy],
    acks: Sequence[Acknowledgement],
    *,
    now: datetime,
    db_snapshot: str | None,
) -> Verdict:
    """Assure one image against every applicable policy; see the module docstring."""
    now = _utc(now)
    applicable = applicable_policies(subject, policies)
    findings, acknowledged = _set_aside(subject, acks, now) if applicable else ([], ())
    base = _Image(subject, now, dict(subject.labels), findings, evidence={})
    results = tuple(_evaluate_policy(p, base, acknowledged) for p in applicable)
    blocked = any(r.mode is Mode.ENFORCE and not r.passed for r in results)
    return Verdict(
        status=ImageStatus.DISALLOWED if blocked else ImageStatus.APPROVED,
        results=results,
        evaluated_at=now,
        db_snapshot=db_snapshot,
    )


# --- explanations -----------------------------------------------------------------------------


def _explain_packages(rules: tuple[PackageRule, ...]) -> str:
    parts = []
    for rule in rules:
        text = rule.name + (f" ({rule.type.value})" if rule.type else "")
        text += f" {rule.versions}" if rule.versions else " (any version)"
        if rule.fix_available_days is not None:
            text += f" once a fix has been out {rule.fix_available_days} days"
        parts.append(text)
    return "Fails images containing a denied package: " + "; ".join(parts) + "."


def _explain_grace(controls: Controls) -> str | None:
    grace = controls.grace
    if grace is None or (grace.published_days is None and grace.fixed_days is None):
        return None
    parts = []
    if grace.published_days is not None:
        parts.append(f"published less than {grace.published_days} days ago")
    if grace.fixed_days is not None:
        parts.append(f"whose fix was published less than {grace.fixed_days} days ago")
    return "Ignores vulnerabilities " + " or ".join(parts) + "."


def _fixable(only: bool) -> str:
    return " that have a fixed version" if only else ""


def _labels_text(rules: tuple[LabelRule, ...]) -> str:
    return ", ".join(_rule_text(r) for r in rules)


def _explain_one(name: str, c: Controls) -> str | None:
    match name:
        case "grace":
            return _explain_grace(c)
        case "cve_allowlist" if c.cve_allowlist:
            return f"Never holds {', '.join(c.cve_allowlist)} against the image."
        case "severity" if c.severity:
            return (
                f"Fails images with vulnerabilities{_fixable(c.severity.only_fixable)} of a "
                f"severity above {c.severity.max_severity.value}."
            )
        case "score" if c.score:
            return (
                f"Fails images with vulnerabilities{_fixable(c.score.only_fixable)} scored above "
                f"CVSS {c.score.max_score}."
            )
        case "cve_denylist" if c.cve_denylist:
            return f"Fails images with any of {', '.join(c.cve_denylist)}, whatever the severity."
        case "package_denylist" if c.package_denylist:
            return _explain_packages(c.package_denylist)
        case "block_root" if c.block_root:
            return "Fails images whose user is root (uid 0) or cannot be resolved."
        case "required_labels" if c.required_labels:
            return f"Fails images without the labels {_labels_text(c.required_labels)}."
        case "forbidden_labels" if c.forbidden_labels:
            return f"Fails images with any of the labels {_labels_text(c.forbidden_labels)}."
        case "allowed_registries" if c.allowed_registries:
            return f"Fails images not from {', '.join(c.allowed_registries)}."
        case "trusted_base_images" if c.trusted_base_images:
            return (
                f"Fails images not built on {', '.join(c.trusted_base_images)} "
                "(or whose base image is unknown)."
            )
        case "block_secrets" if c.block_secrets:
            return "Fails images with secrets (keys, tokens, passwords) in their files."
        case "max_image_age_days" if c.max_image_age_days is not None:
            return (
                f"Fails images created more than {c.max_image_age_days} days ago "
                "(or whose creation time is unknown)."
            )
    return None


def explain_controls(controls: Controls) -> list[str]:
    """One sentence per enabled control, in evaluation order; an empty list when all are off."""
    sentences = (_explain_one(name, controls) for name in CONTROL_NAMES)
    return [s for s in sentences if s is not None]
