"""API bodies of image profiling: profiles, profiling sessions, readiness, and the enforcer's
calls (env-started sessions, observation batches, container exits).

Bodies refuse unknown fields (422 naming them); what the shape cannot say (a path that is not
normalized, a field that does not belong to the observation's kind, a path listed twice) is
checked by `core.profile` and answered 400 with the field's path in the message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from tidegate.console.schemas.common import RequestBody
from tidegate.console.schemas.events import EventPublic
from tidegate.core.policy import Mode
from tidegate.core.profile import (
    MAX_ENDPOINTS,
    MAX_EXECUTABLES,
    MAX_PATH,
    MAX_VOLUMES,
    NetEndpoint,
    Observation,
    ProfileSource,
    ProfilingSession,
    RuntimeProfile,
    SessionOrigin,
    SessionState,
    observation_from_json,
    profile_from_document,
)
from tidegate.services.profiles import Readiness

__all__ = [
    "EndpointBody",
    "EnvSessionAnswer",
    "EnvSessionBody",
    "ExecutableBody",
    "ExitedAnswer",
    "ModeBody",
    "ObservationAnswer",
    "ObservationBatchBody",
    "ObservationBody",
    "ProfileBody",
    "ProfilePublic",
    "ProfileVersionPublic",
    "ReadinessPublic",
    "SessionPublic",
    "SessionStart",
    "StopAnswer",
    "VolumeBody",
]

ProfileName = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
Path = Annotated[str, Field(min_length=1, max_length=MAX_PATH)]
Sha256 = Annotated[
    str, Field(pattern=r"^(sha256:)?[0-9a-fA-F]{64}$", description="Hex digest of the content.")
]
ContainerId = Annotated[str, Field(min_length=1, max_length=128)]
Key = Annotated[str, Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]


class ExecutableBody(RequestBody):
    path: Path
    sha256: Sha256 | None = Field(default=None, description="null: any content")


class VolumeBody(RequestBody):
    destination: Path = Field(description="The mount point in the container.")
    source: str = Field(default="", max_length=MAX_PATH, description="Host path or volume name.")


class EndpointBody(RequestBody):
    protocol: Literal["tcp", "udp"]
    port: int = Field(ge=1, le=65535)
    address: str = Field(default="", max_length=64, description="IP or network; empty: any.")

    @classmethod
    def of(cls, endpoint: NetEndpoint) -> EndpointBody:
        return cls(protocol=endpoint.protocol, port=endpoint.port, address=endpoint.address)  # type: ignore[arg-type]


class ProfileBody(RequestBody):
    """PUT /profiles/{name}: what the profile allows (created when it does not exist)."""

    repository: str = Field(min_length=1, max_length=512, examples=["localhost:5000/shop/api"])
    mode: Mode | None = Field(default=None, description="Omitted: unchanged (new: audit).")
    executables: list[ExecutableBody] = Field(default_factory=list, max_length=MAX_EXECUTABLES)
    volumes: list[VolumeBody] = Field(default_factory=list, max_length=MAX_VOLUMES)
    listeners: list[EndpointBody] = Field(default_factory=list, max_length=MAX_ENDPOINTS)
    outbound: list[EndpointBody] = Field(default_factory=list, max_length=MAX_ENDPOINTS)

    def profile(self, name: str) -> RuntimeProfile:
        """The domain value; `ProfileError` (400) names the field a semantic check refuses."""
        document = self.model_dump(mode="json", exclude={"mode"})
        return profile_from_document({**document, "name": name}, "body")


class ModeBody(RequestBody):
    mode: Mode


class ProfilePublic(BaseModel):
    name: str
    repository: str
    mode: Mode
    version: int
    source: ProfileSource
    executables: list[ExecutableBody]
    volumes: list[VolumeBody]
    listeners: list[EndpointBody]
    outbound: list[EndpointBody]
    learned_from: list[str] = Field(description="Image digests it was learned from.")
    applied_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, profile: RuntimeProfile) -> ProfilePublic:
        return cls(
            name=profile.name,
            repository=profile.repository,
            mode=profile.mode,
            version=profile.version,
            source=profile.source,
            executables=[ExecutableBody(path=e.path, sha256=e.sha256) for e in profile.executables],
            volumes=[
                VolumeBody(destination=v.destination, source=v.source) for v in profile.volumes
            ],
            listeners=[EndpointBody.of(e) for e in profile.listeners],
            outbound=[EndpointBody.of(e) for e in profile.outbound],
            learned_from=list(profile.learned_from),
            applied_at=profile.applied_at,
            updated_at=profile.updated_at,
        )


class ProfileVersionPublic(BaseModel):
    version: int
    change: Literal["created", "updated", "applied", "mode"]
    changed: datetime
    changed_by: str | None
    document: dict[str, Any]


class SessionStart(RequestBody):
    image: str = Field(min_length=1, max_length=1024, examples=["localhost:5000/shop/api:1.4"])
    profile: ProfileName
    append: bool = Field(default=False, description="Add to the existing profile.")
    duration_seconds: int | None = Field(
        default=None,
        ge=1,
        le=30 * 86400,
        description="The automatic profiler: learn this long, then apply (audit mode).",
    )


class SessionPublic(BaseModel):
    id: str
    profile: str
    repository: str
    digest: str | None
    append: bool
    origin: SessionOrigin
    state: SessionState
    started_at: datetime
    started_by: str
    ends_at: datetime | None
    stopped_at: datetime | None
    stopped_by: str | None
    containers: list[str]

    @classmethod
    def of(cls, session: ProfilingSession) -> SessionPublic:
        return cls(
            id=session.id,
            profile=session.profile,
            repository=session.repository,
            digest=session.digest,
            append=session.append,
            origin=session.origin,
            state=session.state,
            started_at=session.started_at,
            started_by=session.started_by,
            ends_at=session.ends_at,
            stopped_at=session.stopped_at,
            stopped_by=session.stopped_by,
            containers=list(session.containers),
        )


class StopAnswer(BaseModel):
    session: SessionPublic
    profile: ProfilePublic = Field(description="The profile applied, in audit mode.")
    observations: int


class ExecutableReadinessPublic(BaseModel):
    path: str
    count: int
    first_seen: datetime
    last_seen: datetime


class ReadinessPublic(BaseModel):
    profile: str
    mode: Mode
    version: int
    since: datetime = Field(description="Applied or last switched mode.")
    total: int = Field(description="DETECT events against the profile since then.")
    executables: list[ExecutableReadinessPublic]
    latest: list[EventPublic]
    sessions: list[SessionPublic] = Field(description="Sessions it was learned from.")

    @classmethod
    def of(cls, readiness: Readiness) -> ReadinessPublic:
        return cls(
            profile=readiness.profile.name,
            mode=readiness.profile.mode,
            version=readiness.profile.version,
            since=readiness.since,
            total=readiness.total,
            executables=[
                ExecutableReadinessPublic(
                    path=e.path, count=e.count, first_seen=e.first_seen, last_seen=e.last_seen
                )
                for e in readiness.executables
            ],
            latest=[EventPublic.model_validate(e) for e in readiness.latest],
            sessions=[SessionPublic.of(s) for s in readiness.sessions],
        )


# --- the enforcer's calls ----------------------------------------------------------------------


class EnvSessionBody(RequestBody):
    """A container started with TIDEGATE_PROFILE=<profile> (and TIDEGATE_PROFILE_APPEND=1)."""

    profile: ProfileName
    image_ref: str = Field(min_length=1, max_length=1024)
    digest: str | None = Field(default=None, max_length=200)
    container_id: ContainerId
    append: bool = False


class EnvSessionAnswer(BaseModel):
    session: SessionPublic
    started: bool = Field(description="A new session was started (else the container joined).")


class ObservationBody(RequestBody):
    """One observation; only the fields of its kind may be given."""

    key: Key = Field(description="Idempotency key: the same key again is stored once.")
    session_id: str = Field(min_length=1, max_length=64)
    container_id: ContainerId
    kind: Literal["exec", "volume", "listen", "connect"]
    observed_at: datetime
    path: Path | None = None
    sha256: Sha256 | None = None
    destination: Path | None = None
    source: str | None = Field(default=None, max_length=MAX_PATH)
    protocol: Literal["tcp", "udp"] | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    address: str | None = Field(default=None, max_length=64)

    def observation(self, where: str) -> Observation:
        fields = self.model_dump(mode="json", exclude_none=True, exclude={"key", "session_id"})
        return observation_from_json(fields, where)


class ObservationBatchBody(RequestBody):
    observations: list[ObservationBody] = Field(max_length=5000)


class ObservationAnswer(BaseModel):
    accepted: list[str]
    duplicates: list[str] = Field(description="Keys already stored: ignored.")
    ignored: list[str] = Field(description="Keys of sessions no longer active: dropped.")


class ExitedAnswer(BaseModel):
    stopped: list[StopAnswer] = Field(description="Sessions whose last container this was.")
