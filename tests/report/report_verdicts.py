"""Verdicts on the Debian report result, built by hand as the assurance gate would write them."""

from __future__ import annotations

from datetime import UTC, datetime

from tidegate.core.models import Severity
from tidegate.core.policy import (
    AckId,
    AcknowledgedFinding,
    AssurancePolicy,
    ControlFailure,
    Controls,
    ImageStatus,
    LabelRule,
    Mode,
    PolicyId,
    PolicyResult,
    SeverityLimit,
    Verdict,
)

EVALUATED_AT = datetime(2026, 3, 1, 12, 31, tzinfo=UTC)
FIX_VERSION = "3.0.11-1~deb12u2"
OPENSSL_KEY = "CVE-2023-5678 libssl3@3.0.11-1~deb12u1"
ZLIB_KEY = "CVE-2023-45853 zlib1g@1:1.2.13.dfsg-1"
REQUESTS_KEY = "GHSA-j8r2-6x86-q33q requests@2.31.0"

BASELINE = AssurancePolicy(
    id=PolicyId("pol-baseline"),
    name="production baseline",
    mode=Mode.ENFORCE,
    version=3,
    controls=Controls(
        severity=SeverityLimit(Severity.HIGH),
        cve_denylist=("CVE-2023-5678",),
        block_root=True,
        cve_allowlist=("CVE-2000-0001",),
    ),
)
HARDENING = AssurancePolicy(
    id=PolicyId("pol-hardening"),
    name="hardening <audit>",
    mode=Mode.AUDIT,
    controls=Controls(block_secrets=True, required_labels=(LabelRule("owner"),)),
)
POLICIES = (BASELINE, HARDENING)

_BASELINE_FAILED = PolicyResult(
    policy_id=BASELINE.id,
    policy_name=BASELINE.name,
    policy_version=3,
    mode=Mode.ENFORCE,
    failures=(
        ControlFailure(
            "severity",
            "1 finding above high: CVE-2023-45853 in zlib1g (critical)",
            (ZLIB_KEY,),
        ),
        ControlFailure(
            "cve_denylist",
            "denied vulnerabilities present: CVE-2023-5678",
            (OPENSSL_KEY,),
            f"upgrade libssl3 to {FIX_VERSION}",
        ),
    ),
    acknowledged=(
        AcknowledgedFinding(REQUESTS_KEY, AckId("ack-7"), datetime(2026, 6, 1, tzinfo=UTC)),
    ),
)
_HARDENING_FAILED = PolicyResult(
    policy_id=HARDENING.id,
    policy_name=HARDENING.name,
    policy_version=1,
    mode=Mode.AUDIT,
    failures=(
        ControlFailure(
            "block_secrets",
            "secrets in the image: /app/config/settings.ini (AWS Access Key ID) & <more>",
            remediation="remove the file from the image and rotate the key",
        ),
    ),
)


def disallowed_verdict() -> Verdict:
    """The baseline (enforce) fails two controls; hardening (audit) fails one."""
    return Verdict(
        status=ImageStatus.DISALLOWED,
        results=(_BASELINE_FAILED, _HARDENING_FAILED),
        evaluated_at=EVALUATED_AT,
        db_snapshot="2026-03-01T00:00:00Z-4f2a",
    )


def approved_verdict() -> Verdict:
    """Both policies pass."""
    return Verdict(
        status=ImageStatus.APPROVED,
        results=(
            PolicyResult(BASELINE.id, BASELINE.name, 3, Mode.ENFORCE),
            PolicyResult(HARDENING.id, HARDENING.name, 1, Mode.AUDIT),
        ),
        evaluated_at=EVALUATED_AT,
    )
