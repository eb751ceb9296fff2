"""Ignore rules and report filters (core/ignore.py): which findings a rule covers, expiry, and
the order of the filters (severity and unfixed first, then the rules)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tidegate.core.ignore import FilterOutcome, FindingFilter, IgnoreRule, filter_findings
from tidegate.core.models import Finding, FixState, Location, Package, PackageType, Severity

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def finding(
    vid: str = "CVE-2023-5678",
    *,
    aliases: tuple[str, ...] = ("DEBIAN-CVE-2023-5678", "GHSA-aaaa-bbbb-cccc"),
    name: str = "libssl3",
    purl: str = "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?distro=debian-12",
    path: str = "/var/lib/dpkg/status",
    severity: Severity = Severity.HIGH,
    status: FixState = FixState.FIXED,
) -> Finding:
    package = Package(
        name, "3.0.11-1~deb12u2", PackageType.DEB, "dpkg", locations=(Location(path),), purl=purl
    )
    return Finding(vid, aliases, package, status, severity=severity)


OPENSSL = finding()
REQUESTS = finding(
    "CVE-2023-32681",
    aliases=("PYSEC-2023-74",),
    name="requests",
    purl="pkg:pypi/requests@2.30.0",
    path="/usr/lib/python3/dist-packages/requests-2.30.0.dist-info/METADATA",
    severity=Severity.MEDIUM,
)


@pytest.mark.parametrize(
    ("rule", "target", "covers"),
    [
        (IgnoreRule("CVE-2023-5678"), OPENSSL, True),
        (IgnoreRule("DEBIAN-CVE-2023-5678"), OPENSSL, True),  # an alias
        (IgnoreRule("GHSA-aaaa-bbbb-cccc"), OPENSSL, True),
        (IgnoreRule("CVE-2023-5679"), OPENSSL, False),
        (IgnoreRule("cve-2023-5678"), OPENSSL, False),  # ids are exact
        (IgnoreRule("CVE-2023-5678", packages=("libssl3",)), OPENSSL, True),
        (IgnoreRule("CVE-2023-5678", packages=("libcrypto3",)), OPENSSL, False),
        (IgnoreRule("CVE-2023-5678", packages=("libcrypto3", "libssl3")), OPENSSL, True),
        (IgnoreRule("CVE-2023-5678", packages=("pkg:deb/debian/libssl3",)), OPENSSL, True),
        (IgnoreRule("CVE-2023-5678", packages=("pkg:deb/debian/openssl",)), OPENSSL, False),
        (IgnoreRule("CVE-2023-5678", packages=("pkg:rpm/",)), OPENSSL, False),
        (IgnoreRule("CVE-2023-5678", paths=("/var/lib/dpkg/*",)), OPENSSL, True),
        (IgnoreRule("CVE-2023-5678", paths=("/usr/**",)), OPENSSL, False),
        (IgnoreRule("CVE-2023-32681", paths=("/usr/lib/python3/*",)), REQUESTS, True),
        (
            IgnoreRule("CVE-2023-32681", packages=("requests",), paths=("/opt/*",)),
            REQUESTS,
            False,  # both narrowings must hold
        ),
    ],
)
def test_rule_covers(rule: IgnoreRule, target: Finding, covers: bool) -> None:
    assert rule.covers(target) is covers


@pytest.mark.parametrize(
    ("expires", "expired"),
    [
        (None, False),
        (datetime(2026, 6, 2, tzinfo=UTC), False),
        (NOW, True),  # expires at that instant: no longer hides anything
        (datetime(2026, 5, 31, tzinfo=UTC), True),
    ],
)
def test_rule_expiry(expires: datetime | None, expired: bool) -> None:
    assert IgnoreRule("CVE-1", expires=expires).expired(NOW) is expired


UNFIXED_LOW = finding("CVE-2005-2541", aliases=(), name="tar", severity=Severity.LOW,
                      status=FixState.AFFECTED, purl="pkg:deb/debian/tar@1.34")  # fmt: skip
DEFERRED = finding("CVE-2023-7008", aliases=(), name="libsystemd0", severity=Severity.MEDIUM,
                   status=FixState.FIX_DEFERRED, purl="pkg:deb/debian/libsystemd0@252")  # fmt: skip
ALL = (OPENSSL, REQUESTS, UNFIXED_LOW, DEFERRED)


@pytest.mark.parametrize(
    ("spec", "kept", "ignored", "filtered_out"),
    [
        (FindingFilter(), ALL, (), 0),
        (FindingFilter(severities=frozenset({Severity.HIGH})), (OPENSSL,), (), 3),
        (
            FindingFilter(severities=frozenset({Severity.MEDIUM, Severity.LOW})),
            (REQUESTS, UNFIXED_LOW, DEFERRED),
            (),
            1,
        ),
        (FindingFilter(ignore_unfixed=True), (OPENSSL, REQUESTS), (), 2),  # deferred is unfixed
        (
            FindingFilter(rules=(IgnoreRule("PYSEC-2023-74"),)),
            (OPENSSL, UNFIXED_LOW, DEFERRED),
            (REQUESTS,),
            0,
        ),
        # a finding filtered out by severity is not reported as ignored by a rule
        (
            FindingFilter(frozenset({Severity.HIGH}), rules=(IgnoreRule("CVE-2023-32681"),)),
            (OPENSSL,),
            (),
            3,
        ),
    ],
)
def test_filter_findings(
    spec: FindingFilter,
    kept: tuple[Finding, ...],
    ignored: tuple[Finding, ...],
    filtered_out: int,
) -> None:
    outcome = filter_findings(ALL, spec, NOW)
    assert outcome.kept == kept
    assert tuple(f for f, _ in outcome.ignored) == ignored
    assert outcome.filtered_out == filtered_out
    assert outcome.expired_rules == ()


def test_expired_rule_hides_nothing_and_is_reported() -> None:
    stale = IgnoreRule("CVE-2023-5678", expires=datetime(2026, 1, 31, tzinfo=UTC), reason="old")
    live = IgnoreRule("CVE-2023-32681", expires=datetime(2027, 1, 31, tzinfo=UTC))
    outcome = filter_findings(ALL, FindingFilter(rules=(stale, live)), NOW)
    assert OPENSSL in outcome.kept
    assert outcome.ignored == ((REQUESTS, live),)
    assert outcome.expired_rules == (stale,)


def test_first_covering_rule_is_the_one_reported() -> None:
    broad, narrow = IgnoreRule("CVE-2023-5678"), IgnoreRule("CVE-2023-5678", packages=("libssl3",))
    outcome = filter_findings((OPENSSL,), FindingFilter(rules=(narrow, broad)), NOW)
    assert outcome == FilterOutcome(kept=(), ignored=((OPENSSL, narrow),))
