"""The CI gate's side of the console: which policies and acknowledgements apply to an image
about to be built into a release, and the audit event of each CI scan.

The gate evaluates with `core.assurance.evaluate` on its own machine; the console tells it what
to evaluate with. The policies are chosen by the same scope rule as the console's own evaluation
(`core.assurance.applicable_policies`). Acknowledgements are narrowed to those whose scope can
cover the image; `evaluate` re-checks each one, so the narrowing only saves bytes and never
decides anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tidegate.core.assurance import applicable_policies
from tidegate.core.events import EventCategory, EventLevel
from tidegate.core.modes import Action, ModeDecision, decide
from tidegate.core.policy import AckScopeKind, ImageSubject, Mode
from tidegate.services.acks import AckState, state_of
from tidegate.services.events import record_event
from tidegate.services.policies import list_policies, to_domain
from tidegate.store.inventory import AcknowledgementRow, PolicyRow

__all__ = [
    "CiPolicyResult",
    "GateIdentity",
    "GatePolicies",
    "gate_policies",
    "record_ci_scan",
]


@dataclass(frozen=True, slots=True)
class GateIdentity:
    """The image as CI knows it before it is pushed."""

    digests: tuple[str, ...]
    """Its manifest and/or config digest (a local build may have only the config digest)."""
    registry: str | None = None
    repository: str | None = None
    labels: tuple[tuple[str, str], ...] = ()

    def subject(self) -> ImageSubject:
        return ImageSubject(
            digest=self.digests[0] if self.digests else "",
            registry=self.registry,
            repository=self.repository,
            labels=self.labels,
        )


@dataclass(frozen=True, slots=True)
class GatePolicies:
    policies: list[PolicyRow]
    acknowledgements: list[AcknowledgementRow]


def _ack_may_cover(row: AcknowledgementRow, identity: GateIdentity) -> bool:
    value = row.scope_value
    match AckScopeKind(row.scope_kind):
        case AckScopeKind.GLOBAL:
            return True
        case AckScopeKind.REGISTRY:
            return value is not None and value == identity.registry
        case AckScopeKind.REPOSITORY:
            names = {identity.repository}
            if identity.registry and identity.repository:
                names.add(f"{identity.registry}/{identity.repository}")
            return value in names
        case AckScopeKind.IMAGE:
            return value in identity.digests
    return False


def gate_policies(session: Session, *, identity: GateIdentity, now: datetime) -> GatePolicies:
    """The enabled policies whose scope covers the image, and the acknowledgements active at
    `now` whose scope may cover it."""
    rows = list_policies(session)
    by_id = {row.id: row for row in rows}
    chosen = applicable_policies(identity.subject(), [to_domain(r) for r in rows])
    query = select(AcknowledgementRow).where(AcknowledgementRow.revoked.is_(None))
    acks = [
        row
        for row in session.scalars(query.order_by(AcknowledgementRow.created))
        if state_of(row, now) is AckState.ACTIVE and _ack_may_cover(row, identity)
    ]
    return GatePolicies(policies=[by_id[p.id] for p in chosen], acknowledgements=acks)


@dataclass(frozen=True, slots=True)
class CiPolicyResult:
    """One policy's result as the gate reports it."""

    policy: str
    mode: Mode
    """The policy's mode at evaluation time."""
    failed_controls: tuple[str, ...] = ()


def _level(decisions: Sequence[ModeDecision]) -> EventLevel:
    actions = {d.action for d in decisions}
    if Action.BLOCK in actions:
        return EventLevel.BLOCK
    if Action.DETECT in actions:
        return EventLevel.DETECT
    return EventLevel.INFO


def record_ci_scan(
    session: Session,
    *,
    digest: str,
    reference: str | None,
    verdict: str,
    enforce: bool,
    pipeline: Mapping[str, Any],
    results: Sequence[CiPolicyResult],
    actor: str,
    now: datetime,
) -> int:
    """Record one CI scan as an audit event (category ci); its id.

    The console decides each policy's action itself, by the one mode rule (`core.modes.decide`)
    over the reported policy mode and the pipeline flag, so the event's modes are never the
    client's say-so."""
    point = Mode.ENFORCE if enforce else Mode.AUDIT
    decisions = [decide(bool(r.failed_controls), r.mode, point) for r in results]
    level = _level(decisions)
    blocked = [
        r.policy for r, d in zip(results, decisions, strict=True) if d.action is Action.BLOCK
    ]
    detected = [
        r.policy for r, d in zip(results, decisions, strict=True) if d.action is Action.DETECT
    ]
    where = pipeline.get("system") or "ci"
    if blocked:
        told = f"build failed by enforced policies: {', '.join(blocked)}"
    elif detected:
        told = f"build passed; policies failed without blocking: {', '.join(detected)}"
    else:
        told = "build passed"
    name = reference or digest
    return record_event(
        session,
        category=EventCategory.CI,
        level=level,
        action="ci.scan",
        message=f"{where} scanned {name}: verdict {verdict}, {told}",
        now=now,
        actor=actor,
        image_digest=digest,
        policy=next(iter(blocked or detected), None),
        data={
            "system": pipeline.get("system"),
            "job_url": pipeline.get("job_url"),
            "commit": pipeline.get("commit"),
            "branch": pipeline.get("branch"),
            "pipeline": pipeline.get("pipeline"),
            "verdict": verdict,
            "enforce": enforce,
            "point_mode": point.value,
            "reference": reference,
            "policies": [
                {
                    "policy": r.policy,
                    "policy_mode": d.policy_mode.value,
                    "point_mode": d.point_mode.value,
                    "effective_mode": d.effective_mode.value,
                    "action": d.action.value,
                    "failed_controls": list(r.failed_controls),
                }
                for r, d in zip(results, decisions, strict=True)
            ],
        },
    )
