"""Image assurance: scope, acknowledgements, every control (passing and failing), modes, the
DESIGN.md story, explanations and speed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tidegate.core.assurance import (
    CONTROL_NAMES,
    acknowledgement_covers,
    evaluate,
    explain_controls,
    finding_key,
    remediation,
    scope_covers,
)
from tidegate.core.models import (
    Finding,
    FixState,
    ImageFacts,
    Location,
    Package,
    PackageType,
    Secret,
    Severity,
)
from tidegate.core.policy import (
    AckId,
    Acknowledgement,
    AckScopeKind,
    AssurancePolicy,
    Controls,
    GracePeriod,
    ImageStatus,
    ImageSubject,
    LabelRule,
    Mode,
    PackageRule,
    PolicyId,
    Scope,
    ScoreLimit,
    SeverityLimit,
    Verdict,
)

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)

LIBSSL = Package(
    "libssl3",
    "3.0.9-1",
    PackageType.DEB,
    "dpkg",
    locations=(Location("/var/lib/dpkg/status"),),
    source_name="openssl",
    source_version="3.0.9-1",
)
ZLIB = Package("zlib1g", "1:1.2.13.dfsg-1", PackageType.DEB, "dpkg", source_name="zlib")
LOG4J = Package(
    "org.apache.logging.log4j:log4j-core",
    "2.14.1",
    PackageType.MAVEN,
    "java",
    locations=(Location("/app/lib/log4j-core-2.14.1.jar"),),
)
REQUESTS = Package(
    "Requests", "2.25.0", PackageType.PYPI, "python", locations=(Location("/usr/lib/py/req"),)
)

OPENSSL_CVE = Finding(
    id="CVE-2023-5678",
    aliases=("DEBIAN-CVE-2023-5678",),
    package=LIBSSL,
    status=FixState.FIXED,
    fixed_versions=("3.0.11-1~deb12u2",),
    severity=Severity.HIGH,
    score=7.5,
    published=NOW - 200 * DAY,
    fix_published=NOW - 100 * DAY,
)
ZLIB_CVE = Finding(
    id="CVE-2023-45853",
    aliases=(),
    package=ZLIB,
    status=FixState.WONT_FIX,
    severity=Severity.CRITICAL,
    score=9.8,
    published=NOW - 5 * DAY,
)
LOG4SHELL = Finding(
    id="CVE-2021-44228",
    aliases=("GHSA-jfh8-c2jp-5v3q",),
    package=LOG4J,
    status=FixState.FIXED,
    fixed_versions=("2.3.1", "2.12.2", "2.15.0"),
    severity=Severity.CRITICAL,
    score=10.0,
    published=NOW - 900 * DAY,
    fix_published=NOW - 3 * DAY,
)
REQ_CVE = Finding(
    id="GHSA-j8r2-6x86-q33q",
    aliases=("CVE-2023-32681",),
    package=REQUESTS,
    status=FixState.FIXED,
    fixed_versions=("2.31.0",),
    severity=Severity.MEDIUM,
    score=None,
)
ALL_FINDINGS = (OPENSSL_CVE, ZLIB_CVE, LOG4SHELL, REQ_CVE)


def subject(**changes: Any) -> ImageSubject:
    base = ImageSubject(
        digest="sha256:" + "a" * 64,
        registry="registry.example.com",
        repository="team-a/web",
        tags=("1.0",),
        labels=(("owner", "team-a"), ("env", "prod")),
        facts=ImageFacts(
            user="app",
            uid=1000,
            runs_as_root=False,
            created=NOW - 10 * DAY,
            base_image="docker.io/library/debian:bookworm",
        ),
        packages=(LIBSSL, ZLIB, LOG4J, REQUESTS),
        findings=(OPENSSL_CVE,),
    )
    return dataclasses.replace(base, **changes)


def facts(**changes: Any) -> ImageFacts:
    return dataclasses.replace(subject().facts, **changes)


def policy(controls: Controls, **changes: Any) -> AssurancePolicy:
    base = AssurancePolicy(id=PolicyId("p1"), name="baseline", controls=controls)
    return dataclasses.replace(base, **changes)


def ack(vulnerability: str = "CVE-2023-5678", **changes: Any) -> Acknowledgement:
    base = Acknowledgement(
        id=AckId("ack-1"),
        vulnerability=vulnerability,
        scope=AckScopeKind.GLOBAL,
        scope_value=None,
        requester="alice",
        justification="not reachable: TLS terminates at the proxy",
        created=NOW - 30 * DAY,
        expires=NOW + 30 * DAY,
    )
    return dataclasses.replace(base, **changes)


def failures_of(verdict: Verdict) -> dict[str, Any]:
    (result,) = verdict.results
    return {f.control: f for f in result.failures}


# --- scope ------------------------------------------------------------------------------------

SCOPES = [
    (Scope(), True),
    (Scope(registries=("registry.example.com",)), True),
    (Scope(registries=("*.example.com",)), True),
    (Scope(registries=("docker.io", "*.example.com")), True),  # OR within a kind
    (Scope(registries=("docker.io",)), False),
    (Scope(repositories=("team-a/*",)), True),
    (Scope(repositories=("registry.example.com/team-a/*",)), True),
    (Scope(repositories=("team-b/*",)), False),
    (Scope(labels=(LabelRule("owner"),)), True),
    (Scope(labels=(LabelRule("owner", "team-*"),)), True),
    (Scope(labels=(LabelRule("owner", "team-b"), LabelRule("env", "prod"))), True),
    (Scope(labels=(LabelRule("owner", "team-b"),)), False),
    (Scope(labels=(LabelRule("missing"),)), False),
    # AND across kinds
    (Scope(registries=("*.example.com",), repositories=("team-a/*",)), True),
    (Scope(registries=("*.example.com",), repositories=("team-b/*",)), False),
    (Scope(repositories=("team-a/*",), labels=(LabelRule("env", "dev"),)), False),
]


@pytest.mark.parametrize(("scope", "covers"), SCOPES)
def test_scope(scope: Scope, covers: bool) -> None:
    assert scope_covers(scope, subject()) is covers
    verdict = evaluate(subject(), [policy(Controls(), scope=scope)], [], now=NOW, db_snapshot=None)
    assert len(verdict.results) == int(covers)


def test_an_image_without_registry_is_outside_registry_scopes_only() -> None:
    local = subject(registry=None, repository=None)
    assert scope_covers(Scope(), local)
    assert not scope_covers(Scope(registries=("*",)), local)
    assert not scope_covers(Scope(repositories=("*",)), local)


def test_disabled_policies_and_no_policy() -> None:
    off = policy(Controls(block_root=True), enabled=False, mode=Mode.ENFORCE)
    verdict = evaluate(
        subject(facts=facts(runs_as_root=True)), [off], [], now=NOW, db_snapshot="s1"
    )
    assert verdict.status is ImageStatus.APPROVED
    assert verdict.results == ()
    assert verdict.db_snapshot == "s1"
    assert verdict.evaluated_at == NOW


def test_policies_are_ordered_by_name() -> None:
    policies = [policy(Controls(), id=PolicyId(n), name=n) for n in ("zeta", "alpha", "mid")]
    verdict = evaluate(subject(), policies, [], now=NOW, db_snapshot=None)
    assert [r.policy_name for r in verdict.results] == ["alpha", "mid", "zeta"]


# --- vulnerability controls -------------------------------------------------------------------

VULN_CASES = [
    # id, controls, findings, failing control or None, expected finding keys
    ("severity passes", Controls(severity=SeverityLimit(Severity.HIGH)), (OPENSSL_CVE,), None, ()),
    (
        "severity fails",
        Controls(severity=SeverityLimit(Severity.MEDIUM)),
        (OPENSSL_CVE, REQ_CVE),
        "severity",
        ("CVE-2023-5678 libssl3@3.0.9-1",),
    ),
    (
        "severity only fixable skips wont-fix",
        Controls(severity=SeverityLimit(Severity.HIGH, only_fixable=True)),
        (ZLIB_CVE,),
        None,
        (),
    ),
    (
        "severity only fixable counts fixed",
        Controls(severity=SeverityLimit(Severity.MEDIUM, only_fixable=True)),
        (ZLIB_CVE, OPENSSL_CVE),
        "severity",
        ("CVE-2023-5678 libssl3@3.0.9-1",),
    ),
    ("score passes at the limit", Controls(score=ScoreLimit(7.5)), (OPENSSL_CVE,), None, ()),
    (
        "score fails",
        Controls(score=ScoreLimit(7.0)),
        (OPENSSL_CVE, REQ_CVE),  # REQ_CVE has no score: not counted
        "score",
        ("CVE-2023-5678 libssl3@3.0.9-1",),
    ),
    (
        "score only fixable",
        Controls(score=ScoreLimit(5.0, only_fixable=True)),
        (ZLIB_CVE,),
        None,
        (),
    ),
    ("denylist passes", Controls(cve_denylist=("CVE-2000-0001",)), ALL_FINDINGS, None, ()),
    (
        "denylist by id",
        Controls(cve_denylist=("CVE-2021-44228",)),
        ALL_FINDINGS,
        "cve_denylist",
        ("CVE-2021-44228 org.apache.logging.log4j:log4j-core@2.14.1",),
    ),
    (
        "denylist by alias, any case",
        Controls(cve_denylist=("cve-2023-32681",)),
        ALL_FINDINGS,
        "cve_denylist",
        ("GHSA-j8r2-6x86-q33q Requests@2.25.0",),
    ),
    (
        "allowlist removes from every vulnerability control",
        Controls(
            severity=SeverityLimit(Severity.LOW),
            cve_denylist=("CVE-2023-5678",),
            cve_allowlist=("DEBIAN-CVE-2023-5678",),
        ),
        (OPENSSL_CVE,),
        None,
        (),
    ),
    (
        "grace by published date",
        Controls(severity=SeverityLimit(Severity.HIGH), grace=GracePeriod(published_days=7)),
        (ZLIB_CVE,),  # published 5 days ago
        None,
        (),
    ),
    (
        "grace by published date expired",
        Controls(severity=SeverityLimit(Severity.HIGH), grace=GracePeriod(published_days=5)),
        (ZLIB_CVE,),
        "severity",
        ("CVE-2023-45853 zlib1g@1:1.2.13.dfsg-1",),
    ),
    (
        "grace by fix date",
        Controls(severity=SeverityLimit(Severity.HIGH), grace=GracePeriod(fixed_days=30)),
        (LOG4SHELL, ZLIB_CVE),  # log4j's fix is 3 days old; zlib has no fix date: held
        "severity",
        ("CVE-2023-45853 zlib1g@1:1.2.13.dfsg-1",),
    ),
]


@pytest.mark.parametrize(
    ("controls", "findings", "control", "keys"),
    [pytest.param(*case[1:], id=case[0]) for case in VULN_CASES],
)
def test_vulnerability_controls(
    controls: Controls, findings: tuple[Finding, ...], control: str | None, keys: tuple[str, ...]
) -> None:
    verdict = evaluate(
        subject(findings=findings), [policy(controls)], [], now=NOW, db_snapshot=None
    )
    failed = failures_of(verdict)
    if control is None:
        assert failed == {}
    else:
        assert list(failed) == [control]
        assert failed[control].findings == keys
        assert failed[control].message


def test_failure_names_the_fix_to_upgrade_to() -> None:
    verdict = evaluate(
        subject(findings=(OPENSSL_CVE, ZLIB_CVE, LOG4SHELL)),
        [policy(Controls(severity=SeverityLimit(Severity.MEDIUM)))],
        [],
        now=NOW,
        db_snapshot=None,
    )
    failure = failures_of(verdict)["severity"]
    assert failure.message == "3 vulnerabilities above the maximum severity medium"
    assert "upgrade openssl (libssl3) to 3.0.11-1~deb12u2" in failure.remediation
    # Of 2.3.1, 2.12.2 and 2.15.0 the lowest above 2.14.1 fixes it.
    assert "upgrade org.apache.logging.log4j:log4j-core to 2.15.0" in failure.remediation
    assert "no fix is available yet for zlib (zlib1g)" in failure.remediation


def test_remediation_takes_the_highest_fix_per_package() -> None:
    second = dataclasses.replace(OPENSSL_CVE, id="CVE-2024-0727", fixed_versions=("3.0.13-1",))
    assert remediation([OPENSSL_CVE, second]) == "upgrade openssl (libssl3) to 3.0.13-1"
    assert finding_key(second) == "CVE-2024-0727 libssl3@3.0.9-1"


def test_duplicate_findings_are_named_once() -> None:
    twin = dataclasses.replace(OPENSSL_CVE, severity=Severity.CRITICAL)
    verdict = evaluate(
        subject(findings=(OPENSSL_CVE, twin)),
        [policy(Controls(severity=SeverityLimit(Severity.LOW)))],
        [],
        now=NOW,
        db_snapshot=None,
    )
    assert failures_of(verdict)["severity"].findings == ("CVE-2023-5678 libssl3@3.0.9-1",)


# --- package deny list ------------------------------------------------------------------------

PACKAGE_CASES = [
    ("by name", PackageRule("zlib1g"), True, "zlib1g@1:1.2.13.dfsg-1 (deb)"),
    ("other name", PackageRule("curl"), False, ""),
    ("type matches", PackageRule("zlib1g", type=PackageType.DEB), True, "zlib1g"),
    ("type differs", PackageRule("zlib1g", type=PackageType.APK), False, ""),
    ("in range", PackageRule("org.apache.logging.log4j:log4j-core", "<2.17.1"), True, "<2.17.1"),
    ("out of range", PackageRule("org.apache.logging.log4j:log4j-core", ">=2.17.1"), False, ""),
    ("or range", PackageRule("org.apache.logging.log4j:log4j-core", "<2.0 || <2.15"), True, ""),
    ("dpkg epoch", PackageRule("zlib1g", "<1.3"), False, ""),  # the epoch 1: makes it newer
    ("pypi normalised name", PackageRule("requests", "<2.31"), True, "Requests@2.25.0"),
    ("fix old enough", PackageRule("libssl3", fix_available_days=90), True, "out for at least"),
    ("fix too recent", PackageRule("libssl3", fix_available_days=101), False, ""),
    ("no fix at all", PackageRule("zlib1g", fix_available_days=1), False, ""),
    ("above the range", PackageRule("Requests", "<2.0"), False, ""),
    ("bad constraint fails closed", PackageRule("zlib1g", ">>1"), True, "cannot tell whether"),
]


@pytest.mark.parametrize(
    ("rule", "fails", "text"), [pytest.param(*c[1:], id=c[0]) for c in PACKAGE_CASES]
)
def test_package_denylist(rule: PackageRule, fails: bool, text: str) -> None:
    image = subject(findings=ALL_FINDINGS)
    verdict = evaluate(
        image, [policy(Controls(package_denylist=(rule,)))], [], now=NOW, db_snapshot=None
    )
    failed = failures_of(verdict)
    assert ("package_denylist" in failed) is fails
    if fails:
        assert text in failed["package_denylist"].message


def test_package_denylist_with_fix_days_names_findings_and_fix() -> None:
    rule = PackageRule("libssl3", "<3.0.11", type=PackageType.DEB, fix_available_days=30)
    verdict = evaluate(
        subject(findings=ALL_FINDINGS),
        [policy(Controls(package_denylist=(rule,)))],
        [],
        now=NOW,
        db_snapshot=None,
    )
    failure = failures_of(verdict)["package_denylist"]
    assert failure.findings == ("CVE-2023-5678 libssl3@3.0.9-1",)
    assert failure.remediation == "upgrade openssl (libssl3) to 3.0.11-1~deb12u2"


def test_package_version_that_cannot_be_compared_fails_saying_so() -> None:
    odd = Package("mylib", "not a version!", PackageType.PYPI, "python")
    verdict = evaluate(
        subject(packages=(odd,)),
        [policy(Controls(package_denylist=(PackageRule("mylib", "<2.0"),)))],
        [],
        now=NOW,
        db_snapshot=None,
    )
    assert (
        "cannot tell whether it matches '<2.0'" in failures_of(verdict)["package_denylist"].message
    )


# --- image controls ---------------------------------------------------------------------------

IMAGE_CASES: list[tuple[str, Controls, dict[str, Any], str | None, str]] = [
    ("root off", Controls(), {"facts": facts(runs_as_root=True)}, None, ""),
    ("not root", Controls(block_root=True), {}, None, ""),
    ("root", Controls(block_root=True), {"facts": facts(runs_as_root=True, user="")}, "block_root",
     "no USER is set"),
    ("root uid 0", Controls(block_root=True), {"facts": facts(runs_as_root=True, user="root")},
     "block_root", "user 'root' is uid 0"),
    ("user unknown", Controls(block_root=True),
     {"facts": facts(runs_as_root=None, user="ghost", uid=None)}, "block_root",
     "could not resolve the image's user 'ghost'"),
    ("required present", Controls(required_labels=(LabelRule("owner", "team-*"),)), {}, None, ""),
    ("required missing", Controls(required_labels=(LabelRule("owner"), LabelRule("cost-center"))),
     {}, "required_labels", "cost-center"),
    ("required wrong value", Controls(required_labels=(LabelRule("env", "staging"),)), {},
     "required_labels", "env=staging"),
    ("forbidden absent", Controls(forbidden_labels=(LabelRule("debug"),)), {}, None, ""),
    ("forbidden present", Controls(forbidden_labels=(LabelRule("env", "pr*"),)), {},
     "forbidden_labels", "env=prod"),
    ("registry allowed", Controls(allowed_registries=("*.example.com",)), {}, None, ""),
    ("registry case-insensitive", Controls(allowed_registries=("Registry.Example.com",)), {}, None,
     ""),
    ("registry refused", Controls(allowed_registries=("docker.io",)), {}, "allowed_registries",
     "registry registry.example.com is not an allowed registry (docker.io)"),
    ("no registry", Controls(allowed_registries=("docker.io",)), {"registry": None},
     "allowed_registries", "has no registry"),
    ("base trusted by name", Controls(trusted_base_images=("docker.io/library/debian",)), {}, None,
     ""),
    ("base trusted by glob", Controls(trusted_base_images=("docker.io/library/debian:*",)), {},
     None, ""),
    ("base with digest", Controls(trusted_base_images=("docker.io/library/debian",)),
     {"facts": facts(base_image="docker.io/library/debian@sha256:" + "b" * 64)}, None, ""),
    ("base untrusted", Controls(trusted_base_images=("gcr.io/distroless/*",)), {},
     "trusted_base_images", "base image docker.io/library/debian:bookworm is not trusted"),
    ("base unknown", Controls(trusted_base_images=("gcr.io/distroless/*",)),
     {"facts": facts(base_image=None)}, "trusted_base_images", "the base image is unknown"),
    ("no secrets", Controls(block_secrets=True), {}, None, ""),
    ("secrets", Controls(block_secrets=True),
     {"secrets": (Secret("/root/.ssh/id_rsa", "private-key", "Private key", "high",
                         redacted="----****"),)},
     "block_secrets", "/root/.ssh/id_rsa (private-key)"),
    ("young image", Controls(max_image_age_days=30), {}, None, ""),
    ("old image", Controls(max_image_age_days=7), {}, "max_image_age_days",
     "created 2024-05-22, 10 days ago (at most 7 allowed)"),
    ("naive creation time is UTC", Controls(max_image_age_days=7),
     {"facts": facts(created=datetime(2024, 5, 22, 12, 0))}, "max_image_age_days", "10 days ago"),
    ("unknown age", Controls(max_image_age_days=7), {"facts": facts(created=None)},
     "max_image_age_days", "creation time is unknown"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("controls", "changes", "control", "text"), [pytest.param(*c[1:], id=c[0]) for c in IMAGE_CASES]
)
def test_image_controls(
    controls: Controls, changes: dict[str, Any], control: str | None, text: str
) -> None:
    verdict = evaluate(subject(**changes), [policy(controls)], [], now=NOW, db_snapshot=None)
    failed = failures_of(verdict)
    if control is None:
        assert failed == {}
        return
    assert list(failed) == [control]
    assert text in failed[control].message
    assert failed[control].remediation
    assert failed[control].findings == ()


def test_secret_values_never_reach_the_verdict() -> None:
    secret = Secret("/app/.env", "aws-secret-key", "AWS key", "critical", redacted="AKIA****")
    verdict = evaluate(
        subject(secrets=(secret,)),
        [policy(Controls(block_secrets=True))],
        [],
        now=NOW,
        db_snapshot=None,
    )
    assert "AKIA" not in repr(verdict)


def test_failures_follow_control_order() -> None:
    controls = Controls(
        severity=SeverityLimit(Severity.LOW),
        cve_denylist=("CVE-2023-5678",),
        block_root=True,
        max_image_age_days=1,
    )
    image = subject(facts=facts(runs_as_root=True))
    verdict = evaluate(image, [policy(controls)], [], now=NOW, db_snapshot=None)
    names = [f.control for f in verdict.results[0].failures]
    assert names == ["severity", "cve_denylist", "block_root", "max_image_age_days"]
    assert names == [n for n in CONTROL_NAMES if n in names]


def test_control_names_cover_every_control_field() -> None:
    assert sorted(CONTROL_NAMES) == sorted(f.name for f in dataclasses.fields(Controls))


# --- acknowledgements -------------------------------------------------------------------------

DENY = policy(Controls(cve_denylist=("CVE-2023-5678",)), mode=Mode.ENFORCE)
DIGEST = "sha256:" + "a" * 64

ACK_CASES = [
    ("global", ack(), True),
    ("by alias", ack("DEBIAN-CVE-2023-5678"), True),
    ("case-insensitive id", ack("cve-2023-5678"), True),
    ("other vulnerability", ack("CVE-2023-0001"), False),
    ("registry", ack(scope=AckScopeKind.REGISTRY, scope_value="registry.example.com"), True),
    ("other registry", ack(scope=AckScopeKind.REGISTRY, scope_value="docker.io"), False),
    ("repository", ack(scope=AckScopeKind.REPOSITORY, scope_value="team-a/web"), True),
    (
        "registry/repository",
        ack(scope=AckScopeKind.REPOSITORY, scope_value="registry.example.com/team-a/web"),
        True,
    ),
    ("other repository", ack(scope=AckScopeKind.REPOSITORY, scope_value="team-a/api"), False),
    ("image", ack(scope=AckScopeKind.IMAGE, scope_value=DIGEST), True),
    ("other image", ack(scope=AckScopeKind.IMAGE, scope_value="sha256:" + "f" * 64), False),
    ("package name", ack(package_name="libssl3"), True),
    ("source package name", ack(package_name="openssl"), True),
    ("other package", ack(package_name="libcrypto"), False),
    ("package version", ack(package_name="libssl3", package_version="3.0.9-1"), True),
    ("other version", ack(package_version="3.0.8-1"), False),
    ("path glob", ack(path="/var/lib/dpkg/*"), True),
    ("other path", ack(path="/usr/local/*"), False),
    ("expires exactly now", ack(expires=NOW), False),
    ("expires a second later", ack(expires=NOW + timedelta(seconds=1)), True),
    ("never expires", ack(expires=None), True),
    ("revoked", ack(revoked=NOW - DAY, revoked_by="bob"), False),
    ("revocation in the future", ack(revoked=NOW + DAY), True),
]


@pytest.mark.parametrize(("the_ack", "covers"), [pytest.param(*c[1:], id=c[0]) for c in ACK_CASES])
def test_acknowledgements(the_ack: Acknowledgement, covers: bool) -> None:
    image = subject()
    assert acknowledgement_covers(the_ack, image, OPENSSL_CVE, NOW) is covers
    verdict = evaluate(image, [DENY], [the_ack], now=NOW, db_snapshot=None)
    (result,) = verdict.results
    assert result.passed is covers
    assert verdict.status is (ImageStatus.APPROVED if covers else ImageStatus.DISALLOWED)
    if covers:
        (acknowledged,) = result.acknowledged
        assert acknowledged.finding == "CVE-2023-5678 libssl3@3.0.9-1"
        assert acknowledged.ack_id == "ack-1"
        assert acknowledged.expires == the_ack.expires
    else:
        assert result.acknowledged == ()


def test_the_longest_lasting_acknowledgement_is_reported() -> None:
    short = ack(id=AckId("short"), expires=NOW + DAY)
    long = ack("DEBIAN-CVE-2023-5678", id=AckId("long"), expires=NOW + 90 * DAY)
    expired = ack(id=AckId("expired"), expires=NOW - DAY)
    verdict = evaluate(subject(), [DENY], [short, expired, long], now=NOW, db_snapshot=None)
    (acknowledged,) = verdict.results[0].acknowledged
    assert (acknowledged.ack_id, acknowledged.expires) == ("long", NOW + 90 * DAY)


def test_acknowledged_findings_are_set_aside_for_every_policy() -> None:
    severity = policy(
        Controls(severity=SeverityLimit(Severity.LOW)), id=PolicyId("p2"), name="severity"
    )
    image = subject(findings=(OPENSSL_CVE, REQ_CVE))
    verdict = evaluate(image, [DENY, severity], [ack()], now=NOW, db_snapshot=None)
    by_name = {r.policy_name: r for r in verdict.results}
    assert by_name["baseline"].passed
    assert by_name["severity"].failures[0].findings == ("GHSA-j8r2-6x86-q33q Requests@2.25.0",)
    assert [a.finding for a in by_name["severity"].acknowledged] == [
        "CVE-2023-5678 libssl3@3.0.9-1"
    ]


# --- modes ------------------------------------------------------------------------------------


def test_enforce_after_switches_the_policy_to_enforce() -> None:
    graduated = dataclasses.replace(DENY, mode=Mode.AUDIT, enforce_after=NOW)
    before = evaluate(subject(), [graduated], [], now=NOW - DAY, db_snapshot=None)
    at = evaluate(subject(), [graduated], [], now=NOW, db_snapshot=None)
    assert (before.results[0].mode, before.status) == (Mode.AUDIT, ImageStatus.APPROVED)
    assert (at.results[0].mode, at.status) == (Mode.ENFORCE, ImageStatus.DISALLOWED)


def test_audit_failures_approve_with_the_failures_listed() -> None:
    audit = dataclasses.replace(DENY, mode=Mode.AUDIT, id=PolicyId("a"), name="audit")
    clean = policy(Controls(block_root=True), id=PolicyId("e"), name="enforced", mode=Mode.ENFORCE)
    verdict = evaluate(subject(), [audit, clean], [], now=NOW, db_snapshot=None)
    assert verdict.status is ImageStatus.APPROVED
    assert [f.control for f in verdict.results[0].failures] == ["cve_denylist"]
    assert verdict.reason == "approved; fails audit-mode policies: audit"


def test_the_design_story() -> None:
    """Vulnerable image: audit approves with failures; enforce disallows; an acknowledgement
    approves and lists the finding; once it expires the image is disallowed again."""
    image = subject(findings=(OPENSSL_CVE,))
    audit = policy(Controls(severity=SeverityLimit(Severity.MEDIUM)), mode=Mode.AUDIT)
    enforce = dataclasses.replace(audit, mode=Mode.ENFORCE, version=2)
    exception = ack(expires=NOW + 7 * DAY)

    v1 = evaluate(image, [audit], [], now=NOW, db_snapshot="db-1")
    assert v1.status is ImageStatus.APPROVED
    assert v1.results[0].failures[0].findings == ("CVE-2023-5678 libssl3@3.0.9-1",)

    v2 = evaluate(image, [enforce], [], now=NOW, db_snapshot="db-1")
    assert v2.status is ImageStatus.DISALLOWED
    assert v2.reason == "disallowed by baseline: severity"
    assert v2.results[0].policy_version == 2

    v3 = evaluate(image, [enforce], [exception], now=NOW, db_snapshot="db-1")
    assert v3.status is ImageStatus.APPROVED
    assert v3.results[0].acknowledged[0].finding == "CVE-2023-5678 libssl3@3.0.9-1"

    v4 = evaluate(image, [enforce], [exception], now=NOW + 7 * DAY, db_snapshot="db-2")
    assert v4.status is ImageStatus.DISALLOWED
    assert v4.results[0].acknowledged == ()
    assert v4.db_snapshot == "db-2"


def test_naive_times_are_taken_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    graduated = dataclasses.replace(DENY, mode=Mode.AUDIT, enforce_after=naive)
    expiring = ack(expires=naive + DAY, revoked=naive + 2 * DAY)
    assert evaluate(subject(), [graduated], [], now=NOW, db_snapshot=None).results[0].mode is (
        Mode.ENFORCE
    )
    assert evaluate(subject(), [graduated], [expiring], now=naive, db_snapshot=None).status is (
        ImageStatus.APPROVED
    )
    assert not acknowledgement_covers(expiring, subject(), OPENSSL_CVE, NOW + DAY)


def test_evaluation_is_deterministic() -> None:
    policies = [
        policy(Controls(severity=SeverityLimit(Severity.LOW)), id=PolicyId(str(i)), name=f"p{i}")
        for i in range(5)
    ]
    image = subject(findings=ALL_FINDINGS)
    first = evaluate(image, policies, [ack()], now=NOW, db_snapshot=None)
    again = evaluate(image, list(reversed(policies)), [ack()], now=NOW, db_snapshot=None)
    assert first == again


# --- explanations -----------------------------------------------------------------------------


def test_explain_controls() -> None:
    assert explain_controls(Controls()) == []
    controls = Controls(
        severity=SeverityLimit(Severity.HIGH, only_fixable=True),
        score=ScoreLimit(9.0),
        cve_denylist=("CVE-2021-44228",),
        cve_allowlist=("CVE-2023-5678",),
        package_denylist=(PackageRule("log4j-core", "<2.17.1", PackageType.MAVEN, 30),),
        grace=GracePeriod(published_days=7, fixed_days=14),
        block_root=True,
        required_labels=(LabelRule("owner"),),
        forbidden_labels=(LabelRule("debug", "true"),),
        allowed_registries=("registry.example.com",),
        trusted_base_images=("gcr.io/distroless/*",),
        block_secrets=True,
        max_image_age_days=90,
    )
    sentences = explain_controls(controls)
    assert len(sentences) == len(CONTROL_NAMES)
    assert all(s.endswith(".") for s in sentences)
    text = "\n".join(sentences)
    for expected in (
        "published less than 7 days ago or whose fix was published less than 14 days ago",
        "Never holds CVE-2023-5678",
        "that have a fixed version of a severity above high",
        "scored above CVSS 9.0",
        "log4j-core (maven) <2.17.1 once a fix has been out 30 days",
        "without the labels owner.",
        "with any of the labels debug=true.",
        "more than 90 days ago",
    ):
        assert expected in text
    assert explain_controls(Controls(block_root=True)) == [
        "Fails images whose user is root (uid 0) or cannot be resolved."
    ]


# --- speed ------------------------------------------------------------------------------------
