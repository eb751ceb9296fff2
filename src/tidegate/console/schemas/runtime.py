"""API bodies of runtime protection: runtime policies, services, enforcer groups, enforcers, and
the enforcer-facing calls (register, heartbeat, event batches).

Create / Update / Public schemas mirror `core.runtime` (RuntimeScope, RuntimeControls, Service).
Unknown fields are refused (a misspelt control must not silently turn a control off) and every
list item is checked, so a bad body is a 422 whose `loc` names the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, model_validator

from tidegate.console.schemas.common import AwareDatetime, RequestBody
from tidegate.core.bundle import FailMode
from tidegate.core.events import EventLevel
from tidegate.core.modes import effective_mode
from tidegate.core.policy import Mode
from tidegate.core.runtime import (
    ENGINE_LEVEL_CONTROLS,
    RuntimeControls,
    RuntimePolicy,
    normalize_capability,
)

__all__ = [
    "EnforcerEventBody",
    "EnforcerGroupCreate",
    "EnforcerGroupCreated",
    "EnforcerGroupPatch",
    "EnforcerGroupPublic",
    "EnforcerPublic",
    "EnforcerRegister",
    "EnforcerRegistered",
    "EventBatchAnswer",
    "EventBatchBody",
    "HeartbeatAnswer",
    "HeartbeatBody",
    "RuntimeControlsBody",
    "RuntimePolicyBody",
    "RuntimePolicyPatch",
    "RuntimePolicyPublic",
    "RuntimePolicyVersionPublic",
    "RuntimeScopeBody",
    "ServiceBody",
    "ServicePublic",
]


def _absolute(value: str) -> str:
    if not value.startswith(("/", "*")):
        raise ValueError("must be an absolute host path or a glob starting with / or *")
    return value


def _capability(value: str) -> str:
    name = normalize_capability(value)
    if not name.replace("_", "").isalnum():
        raise ValueError(f"{value!r} is not a capability name (e.g. NET_ADMIN, or ALL)")
    return name


Glob = Annotated[str, Field(min_length=1, max_length=255)]
HostPath = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_absolute)]
Capability = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_capability)]
PolicyName = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:/-]*$")
]
GroupName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[a-z0-9][a-z0-9._-]*$")]


class LabelRuleBody(RequestBody):
    key: str = Field(min_length=1, max_length=255)
    value: str | None = Field(
        default=None, max_length=255, description="Glob over the value; null: any value."
    )


class RuntimeScopeBody(RequestBody):
    """Which containers the policy covers; all lists empty: every container."""

    enforcer_groups: list[Glob] = Field(default_factory=list)
    hosts: list[Glob] = Field(default_factory=list)
    namespaces: list[Glob] = Field(default_factory=list)
    container_labels: list[LabelRuleBody] = Field(default_factory=list)
    images: list[Glob] = Field(default_factory=list, description="Globs over image names.")
    registries: list[Glob] = Field(default_factory=list)
    repositories: list[Glob] = Field(default_factory=list)
    services: list[Glob] = Field(default_factory=list, description="Service names.")


class RuntimeControlsBody(RequestBody):
    """Each control is off unless given. `seccomp_profile` is engine-level: no audit form."""

    block_unregistered: bool = False
    block_disallowed: bool = False
    allowed_registries: list[Glob] = Field(default_factory=list)
    volume_blacklist: list[HostPath] = Field(default_factory=list)
    block_privileged: bool = False
    block_host_network: bool = False
    block_host_pid: bool = False
    block_host_ipc: bool = False
    block_root: bool = False
    blocked_capabilities: list[Capability] = Field(default_factory=list)
    require_no_new_privileges: bool = False
    seccomp_profile: bool = False
    drift_prevention: bool = False
    executable_blocklist: list[Glob] = Field(default_factory=list)
    allowed_executables: list[Glob] = Field(default_factory=list)


def _compact(model: BaseModel) -> dict[str, Any]:
    """Only what is set (the stored and exported form)."""
    return {k: v for k, v in model.model_dump(mode="json").items() if v not in (False, [], None)}


class RuntimePolicyBody(RequestBody):
    """A whole runtime policy: the body of POST and PUT."""

    name: PolicyName
    description: str = Field(default="", max_length=4000)
    mode: Mode = Mode.AUDIT
    enabled: bool = True
    enforce_after: AwareDatetime = Field(
        default=None, description="From this time on the policy enforces (graduated rollout)."
    )
    scope: RuntimeScopeBody = Field(default_factory=RuntimeScopeBody)
    controls: RuntimeControlsBody = Field(default_factory=RuntimeControlsBody)

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "mode": self.mode.value,
            "enabled": self.enabled,
            "enforce_after": self.enforce_after.isoformat() if self.enforce_after else None,
            "scope": _compact(self.scope),
            "controls": _compact(self.controls),
        }


class RuntimePolicyPatch(RequestBody):
    """PATCH: only the fields given change."""

    name: PolicyName | None = None
    description: str | None = Field(default=None, max_length=4000)
    mode: Mode | None = None
    enabled: bool | None = None
    enforce_after: AwareDatetime = None
    scope: RuntimeScopeBody | None = None
    controls: RuntimeControlsBody | None = None


def _controls_json(controls: RuntimeControls) -> dict[str, Any]:
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name in RuntimeControls.__dataclass_fields__
        for value in (getattr(controls, name),)
    }


class RuntimePolicyPublic(BaseModel):
    id: str
    name: str
    description: str
    mode: Mode
    effective_mode: Mode = Field(description="The mode in force now (enforce_after applied).")
    enabled: bool
    is_default: bool
    enforce_after: datetime | None
    scope: RuntimeScopeBody
    controls: RuntimeControlsBody
    engine_level_controls: list[str] = Field(
        description="Controls of this policy that are on/off only (applied, never audited)."
    )
    version: int
    created: datetime
    updated: datetime
    updated_by: str | None

    @classmethod
    def from_domain(
        cls,
        policy: RuntimePolicy,
        *,
        created: datetime,
        updated: datetime,
        updated_by: str | None,
        now: datetime,
    ) -> RuntimePolicyPublic:
        scope = policy.scope
        return cls(
            id=policy.id,
            name=policy.name,
            description=policy.description,
            mode=policy.mode,
            effective_mode=policy.mode_at(now),
            enabled=policy.enabled,
            is_default=policy.is_default,
            enforce_after=policy.enforce_after,
            scope=RuntimeScopeBody(
                enforcer_groups=list(scope.enforcer_groups),
                hosts=list(scope.hosts),
                namespaces=list(scope.namespaces),
                container_labels=[
                    LabelRuleBody(key=r.key, value=r.value) for r in scope.container_labels
                ],
                images=list(scope.images),
                registries=list(scope.registries),
                repositories=list(scope.repositories),
                services=list(scope.services),
            ),
            controls=RuntimeControlsBody.model_validate(_controls_json(policy.controls)),
            engine_level_controls=sorted(
                c.value for c in ENGINE_LEVEL_CONTROLS if getattr(policy.controls, c.value)
            ),
            version=policy.version,
            created=created,
            updated=updated,
            updated_by=updated_by,
        )


class RuntimePolicyVersionPublic(BaseModel):
    version: int
    change: Literal["created", "updated", "deleted"]
    changed: datetime
    changed_by: str | None
    document: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Services


class ServiceRuleBody(RequestBody):
    """All given parts must hold; at least one part is required."""

    labels: list[LabelRuleBody] = Field(default_factory=list)
    namespaces: list[Glob] = Field(default_factory=list)
    images: list[Glob] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> ServiceRuleBody:
        if not (self.labels or self.namespaces or self.images):
            raise ValueError(
                "a rule needs labels, namespaces or images (an empty rule matches all)"
            )
        return self


class ServiceBody(RequestBody):
    """The body of PUT /services/{name}."""

    description: str = Field(default="", max_length=4000)
    priority: int = Field(
        default=100, ge=0, le=1_000_000, description="Lower wins when services overlap."
    )
    rules: list[ServiceRuleBody] = Field(min_length=1, max_length=100)

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ServicePublic(BaseModel):
    name: str
    description: str
    priority: int
    rules: list[ServiceRuleBody]
    created: datetime
    updated: datetime
    updated_by: str | None


# ---------------------------------------------------------------------------------------------
# Enforcer groups and enforcers


class EnforcerGroupCreate(RequestBody):
    name: GroupName
    description: str = Field(default="", max_length=4000)
    mode: Mode = Field(default=Mode.AUDIT, description="New groups start in audit.")
    admission_enabled: bool = True
    fail_mode: FailMode = Field(
        default=FailMode.OPEN, description="What an undecidable start gets: open or closed."
    )
    audit_all: bool = Field(default=False, description="Record allowed starts too.")


class EnforcerGroupPatch(RequestBody):
    description: str | None = Field(default=None, max_length=4000)
    mode: Mode | None = None
    admission_enabled: bool | None = None
    fail_mode: FailMode | None = None
    audit_all: bool | None = None


class EnforcerGroupPublic(BaseModel):
    name: str
    description: str
    mode: Mode
    mode_since: datetime
    admission_enabled: bool
    fail_mode: FailMode
    audit_all: bool
    enforcers: int = Field(description="Enforcers registered in the group.")
    created: datetime
    updated: datetime
    updated_by: str | None


class EnforcerGroupCreated(EnforcerGroupPublic):
    token: str = Field(
        description="The group token, shown this once; enforcers authenticate with it."
    )


class EnforcerPublic(BaseModel):
    id: str
    group: str
    hostname: str
    version: str
    registered: datetime
    last_heartbeat: datetime
    health: Literal["healthy", "stale", "offline"]
    bundle_version: str | None
    bundle_current: bool | None = Field(
        description="Whether it runs the group's current bundle (null: not known yet)."
    )
    status: dict[str, Any]


class EnforcerRegister(RequestBody):
    hostname: str = Field(min_length=1, max_length=255)
    version: str = Field(min_length=1, max_length=64)
    enforcer_id: str | None = Field(
        default=None, max_length=64, description="The id it had (a restart): kept for its host."
    )


class GroupSettings(BaseModel):
    name: str
    mode: Mode
    admission_enabled: bool
    fail_mode: FailMode
    audit_all: bool


class EnforcerRegistered(BaseModel):
    enforcer_id: str
    group: GroupSettings
    heartbeat_seconds: float
    poll_seconds: float


class HeartbeatBody(BaseModel):
    """Alive, with the bundle it decides with; any further fields are the enforcer's own report
    (spool depth, hook installed ...), kept as its status."""

    model_config = ConfigDict(extra="allow")

    enforcer_id: str = Field(min_length=1, max_length=64)
    bundle_version: str | None = Field(default=None, max_length=80)
    status: str | dict[str, Any] = "healthy"

    def report(self) -> dict[str, Any]:
        extra = dict(self.model_extra or {})
        if isinstance(self.status, dict):
            return {**extra, **self.status}
        return {**extra, "status": self.status}


class HeartbeatAnswer(BaseModel):
    group: GroupSettings
    bundle_version: str = Field(description="The group's current bundle version.")


class EnforcerEventBody(RequestBody):
    """One decision or observation of an enforcer."""

    idempotency_key: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    ts: datetime = Field(validation_alias=AliasChoices("ts", "occurred_at"))
    source: str | None = Field(default=None, max_length=32, description="hook | admission | ...")
    level: EventLevel
    action: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.-]*$")
    message: str = Field(min_length=1, max_length=4000)
    container_id: str | None = Field(default=None, max_length=128)
    container_name: str | None = Field(default=None, max_length=255)
    image_ref: str | None = Field(
        default=None, max_length=1024, validation_alias=AliasChoices("image_ref", "image")
    )
    image_id: str | None = Field(default=None, max_length=200)
    manifest_digest: str | None = Field(default=None, max_length=200)
    host: str | None = Field(default=None, max_length=255)
    enforcer_group: str | None = Field(
        default=None, max_length=128, description="Ignored: the group is the token's."
    )
    bundle_version: str | None = Field(default=None, max_length=80)
    allowed: bool | None = None
    namespace: str | None = Field(default=None, max_length=255)
    policy_id: str | None = Field(default=None, max_length=64)
    policy_name: str | None = Field(default=None, max_length=128)
    policy_version: int | None = None
    control: str | None = Field(default=None, max_length=64)
    policy_mode: Mode | None = None
    point_mode: Mode | None = Field(
        default=None,
        description="The enforcer group's mode (also accepted as `enforcer_mode`).",
        validation_alias=AliasChoices("point_mode", "enforcer_mode"),
    )
    effective_mode: Mode | None = None
    engine_level: bool = False
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _modes(self) -> EnforcerEventBody:
        if self.ts.tzinfo is None:
            raise ValueError("ts must carry a time zone")
        modes = (self.policy_mode, self.point_mode, self.effective_mode)
        decision = self.level in (EventLevel.BLOCK, EventLevel.DETECT)
        if decision and self.policy_name is not None and None in modes:
            raise ValueError("a policy decision needs policy_mode, point_mode, effective_mode")
        if self.policy_mode and self.point_mode and self.effective_mode and not self.engine_level:
            expected = effective_mode(self.policy_mode, self.point_mode)
            if self.effective_mode != expected:
                raise ValueError(
                    f"effective_mode {self.effective_mode} contradicts policy_mode "
                    f"{self.policy_mode} and point_mode {self.point_mode} (expected {expected})"
                )
        return self

    def event_data(self) -> dict[str, Any]:
        fields = self.model_dump(
            mode="json",
            exclude={
                "idempotency_key",
                "ts",
                "level",
                "action",
                "message",
                "data",
                "enforcer_group",
            },
        )
        out = {**self.data, **{k: v for k, v in fields.items() if v is not None}}
        if self.point_mode is not None:
            out["enforcer_mode"] = self.point_mode.value  # the enforcer's name for the point mode
        return out


class EventBatchBody(RequestBody):
    enforcer_id: str | None = Field(default=None, max_length=64)
    events: list[EnforcerEventBody] = Field(max_length=1000)


class EventBatchAnswer(BaseModel):
    accepted: list[str] = Field(description="Keys stored now.")
    duplicates: list[str] = Field(description="Keys already stored: ignored.")
