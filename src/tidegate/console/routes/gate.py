"""The CI gate's endpoints: what to evaluate an image with, and the audit event of a CI scan.

- `POST /gate/policies` (policies:read + acks:read): the image's identity in, the applicable
  policies (API form) and the active acknowledgements that may cover it out. The gate evaluates
  them with the console's own function, `core.assurance.evaluate`.
- `POST /gate/events` (events:write): one CI scan, stored as an event of category `ci` with the
  pipeline metadata, the verdict and the pipeline flag; the console computes each policy's
  action by the mode rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field

from tidegate.console.deps import ClockDep, Principal, SessionDep, require
from tidegate.console.routes.acks import public as ack_public
from tidegate.console.schemas.acks import AckPublic
from tidegate.console.schemas.common import ERROR_RESPONSES, RequestBody
from tidegate.console.schemas.policies import PolicyPublic
from tidegate.core.assurance import explain_controls
from tidegate.core.policy import ImageStatus, Mode
from tidegate.core.roles import Permission
from tidegate.services import gate
from tidegate.services.policies import to_domain
from tidegate.store.inventory import PolicyRow

router = APIRouter(prefix="/gate", tags=["ci gate"], responses={**ERROR_RESPONSES})
PolicyReader = Annotated[Principal, Depends(require(Permission.POLICIES_READ))]
AckReader = Annotated[Principal, Depends(require(Permission.ACKS_READ))]
EventWriter = Annotated[Principal, Depends(require(Permission.EVENTS_WRITE))]

Digest = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[a-z0-9]+:[0-9a-fA-F]+$")]
Short = Annotated[str, Field(min_length=1, max_length=255)]
Value = Annotated[str, Field(max_length=1024)]


class GateImage(RequestBody):
    """An image as CI knows it: digests, where it will be pushed, its labels."""

    manifest_digest: Digest | None = None
    config_digest: Digest | None = None
    registry: Short | None = None
    repository: Short | None = None
    labels: dict[Annotated[str, Field(max_length=255)], Value] = Field(
        default_factory=dict, max_length=500
    )

    def identity(self) -> gate.GateIdentity:
        digests = tuple(d for d in (self.manifest_digest, self.config_digest) if d)
        return gate.GateIdentity(
            digests=digests,
            registry=self.registry,
            repository=self.repository,
            labels=tuple(sorted(self.labels.items())),
        )


class GatePolicies(BaseModel):
    policies: list[PolicyPublic] = Field(description="The enabled policies covering the image.")
    acknowledgements: list[AckPublic] = Field(
        description="Active acknowledgements whose scope may cover the image."
    )


def policy_public(row: PolicyRow, now: datetime) -> PolicyPublic:
    policy = to_domain(row)
    return PolicyPublic.from_domain(
        policy,
        created=row.created,
        updated=row.updated,
        updated_by=row.updated_by,
        explanation=explain_controls(policy.controls),
        now=now,
    )


@router.post("/policies", response_model=GatePolicies)
def gate_policies(
    body: GateImage,
    _policies: PolicyReader,
    _acks: AckReader,
    session: SessionDep,
    clock: ClockDep,
) -> GatePolicies:
    now = clock()
    found = gate.gate_policies(session, identity=body.identity(), now=now)
    return GatePolicies(
        policies=[policy_public(row, now) for row in found.policies],
        acknowledgements=[ack_public(row, now) for row in found.acknowledgements],
    )


class PipelineBody(RequestBody):
    system: Short = "local"
    job_url: Value | None = None
    commit: Short | None = None
    branch: Short | None = None
    pipeline: Short | None = None


class CiPolicyBody(RequestBody):
    policy: Short
    mode: Mode = Field(description="The policy's mode at evaluation time.")
    failed_controls: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=64
    )


class CiScanBody(RequestBody):
    digest: Digest
    reference: Value | None = None
    verdict: ImageStatus
    enforce: bool = Field(description="The pipeline flag: true when the build enforces.")
    pipeline: PipelineBody = Field(default_factory=PipelineBody)
    policies: list[CiPolicyBody] = Field(default_factory=list, max_length=1000)


class CiScanRecorded(BaseModel):
    event_id: int


@router.post("/events", response_model=CiScanRecorded, status_code=status.HTTP_201_CREATED)
def record_ci_scan(
    body: CiScanBody, principal: EventWriter, session: SessionDep, clock: ClockDep
) -> CiScanRecorded:
    event_id = gate.record_ci_scan(
        session,
        digest=body.digest,
        reference=body.reference,
        verdict=body.verdict.value,
        enforce=body.enforce,
        pipeline=body.pipeline.model_dump(),
        results=[
            gate.CiPolicyResult(p.policy, p.mode, tuple(p.failed_controls)) for p in body.policies
        ],
        actor=principal.name,
        now=clock(),
    )
    return CiScanRecorded(event_id=event_id)
