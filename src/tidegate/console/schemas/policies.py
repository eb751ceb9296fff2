"""API bodies of image assurance policies; the same form is the YAML of `tidegate apply`.

Create / Update / Public schemas mirror `core.policy` (Scope, Controls, each control optional).
Unknown fields are refused (a misspelt control must not silently turn a control off), severities
and package types are enums, version constraints are parsed against the package's ecosystem, so a
bad body is a 422 whose `loc` names the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from tidegate.console.schemas.common import AwareDatetime, RequestBody
from tidegate.core.constraints import parse_constraint, version_kind
from tidegate.core.models import PackageType, Severity
from tidegate.core.policy import AssurancePolicy, Controls, Mode, Scope
from tidegate.services.serialize import (
    controls_from_json,
    controls_to_json,
    scope_from_json,
    scope_to_json,
)

__all__ = [
    "ControlsBody",
    "PolicyBody",
    "PolicyPatch",
    "PolicyPublic",
    "ScopeBody",
]


Glob = Annotated[str, Field(min_length=1, max_length=255)]
NonNegativeDays = Annotated[int, Field(ge=0, le=36500)]


class LabelRuleBody(RequestBody):
    key: str = Field(min_length=1, max_length=255)
    value: str | None = Field(
        default=None, max_length=255, description="Glob over the value; null: any value."
    )


class ScopeBody(RequestBody):
    """Which images the policy covers; all lists empty: every image."""

    registries: list[Glob] = Field(default_factory=list, description="Globs over registry hosts.")
    repositories: list[Glob] = Field(
        default_factory=list, description='Globs over "repo" or "registry/repo".'
    )
    labels: list[LabelRuleBody] = Field(default_factory=list)


class SeverityLimitBody(RequestBody):
    max_severity: Severity = Field(description="The highest severity allowed.")
    only_fixable: bool = False


class ScoreLimitBody(RequestBody):
    max_score: float = Field(ge=0.0, le=10.0, description="The highest CVSS score allowed.")
    only_fixable: bool = False


class PackageRuleBody(RequestBody):
    name: str = Field(min_length=1, max_length=255)
    versions: str | None = Field(default=None, description='A constraint: ">=1.0, <1.2.5".')
    type: PackageType | None = None
    fix_available_days: NonNegativeDays | None = None

    @model_validator(mode="after")
    def _constraint(self) -> PackageRuleBody:
        # ConstraintError is a ValueError: pydantic reports it against this rule.
        if self.versions is not None:
            kind = version_kind(self.type) if self.type is not None else None
            parse_constraint(self.versions, kind)
        return self


class GraceBody(RequestBody):
    published_days: NonNegativeDays | None = None
    fixed_days: NonNegativeDays | None = None


class ControlsBody(RequestBody):
    """Each control is off unless given."""

    severity: SeverityLimitBody | None = None
    score: ScoreLimitBody | None = None
    cve_denylist: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list
    )
    cve_allowlist: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list
    )
    package_denylist: list[PackageRuleBody] = Field(default_factory=list)
    grace: GraceBody | None = None
    block_root: bool = False
    required_labels: list[LabelRuleBody] = Field(default_factory=list)
    forbidden_labels: list[LabelRuleBody] = Field(default_factory=list)
    allowed_registries: list[Glob] = Field(default_factory=list)
    trusted_base_images: list[Glob] = Field(default_factory=list)
    block_secrets: bool = False
    max_image_age_days: NonNegativeDays | None = None

    def to_domain(self) -> Controls:
        return controls_from_json(self.model_dump(mode="json"))

    @classmethod
    def from_domain(cls, controls: Controls) -> ControlsBody:
        return cls.model_validate(controls_to_json(controls))

    def compact(self) -> dict[str, Any]:
        """The controls that are on (the form `tidegate export` writes)."""
        return controls_to_json(self.to_domain())


def _scope_domain(scope: ScopeBody) -> Scope:
    return scope_from_json(scope.model_dump(mode="json"))


class PolicyBody(RequestBody):
    """A whole policy: the body of POST and PUT, and one `kind: Policy` document of apply."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:/-]*$")
    description: str = Field(default="", max_length=4000)
    mode: Mode = Mode.AUDIT
    enabled: bool = True
    enforce_after: AwareDatetime = Field(
        default=None, description="From this time on the policy enforces (graduated rollout)."
    )
    scope: ScopeBody = Field(default_factory=ScopeBody)
    controls: ControlsBody = Field(default_factory=ControlsBody)

    def scope_domain(self) -> Scope:
        return _scope_domain(self.scope)

    def controls_domain(self) -> Controls:
        return self.controls.to_domain()

    def document(self) -> dict[str, Any]:
        """The canonical form: stored in the history, written by export, compared by apply."""
        return {
            "name": self.name,
            "description": self.description,
            "mode": self.mode.value,
            "enabled": self.enabled,
            "enforce_after": self.enforce_after.isoformat() if self.enforce_after else None,
            "scope": scope_to_json(self.scope_domain()),
            "controls": self.controls.compact(),
        }


class PolicyPatch(RequestBody):
    """PATCH: only the fields given change."""

    name: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:/-]*$"
    )
    description: str | None = Field(default=None, max_length=4000)
    mode: Mode | None = None
    enabled: bool | None = None
    enforce_after: AwareDatetime = None
    scope: ScopeBody | None = None
    controls: ControlsBody | None = None


class PolicyPublic(BaseModel):
    id: str
    name: str
    description: str
    mode: Mode
    effective_mode: Mode = Field(description="The mode in force now (enforce_after applied).")
    enabled: bool
    enforce_after: datetime | None
    scope: ScopeBody
    controls: ControlsBody
    explanation: list[str] = Field(description="One sentence per enabled control.")
    version: int
    created: datetime
    updated: datetime
    updated_by: str | None

    @classmethod
    def from_domain(
        cls,
        policy: AssurancePolicy,
        *,
        created: datetime,
        updated: datetime,
        updated_by: str | None,
        explanation: list[str],
        now: datetime,
    ) -> PolicyPublic:
        return cls(
            id=policy.id,
            name=policy.name,
            description=policy.description,
            mode=policy.mode,
            effective_mode=policy.mode_at(now),
            enabled=policy.enabled,
            enforce_after=policy.enforce_after,
            scope=ScopeBody.model_validate(scope_to_json(policy.scope)),
            controls=ControlsBody.from_domain(policy.controls),
            explanation=explanation,
            version=policy.version,
            created=created,
            updated=updated,
            updated_by=updated_by,
        )


class PolicyVersionPublic(BaseModel):
    version: int
    change: Literal["created", "updated", "deleted"]
    changed: datetime
    changed_by: str | None
    document: dict[str, Any]
