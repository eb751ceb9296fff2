"""API bodies of acknowledgements (exceptions); the same form is apply's `kind: Acknowledgement`.

The scope is a kind (global, registry, repository, image) and, except for global, a value: the
registry host, the repository ("repo" or "registry/repo") or the image digest.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidegate.console.schemas.common import AwareDatetime
from tidegate.core.policy import AckScopeKind

__all__ = ["AckBody", "AckPatch", "AckPublic"]

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")


Text = Annotated[str, Field(min_length=1, max_length=255)]


class AckBody(BaseModel):
    """Create an acknowledgement (POST), or one `kind: Acknowledgement` document of apply."""

    model_config = ConfigDict(extra="forbid")

    vulnerability: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description="A vulnerability id; it also covers the vulnerability's aliases.",
    )
    scope: AckScopeKind = AckScopeKind.GLOBAL
    scope_value: str | None = Field(default=None, min_length=1, max_length=512)
    package_name: Text | None = None
    package_version: Text | None = None
    path: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="A glob over the package's location paths.",
    )
    requester: Text | None = Field(
        default=None, description="Who asks for it; only administrators may name someone else."
    )
    justification: str = Field(min_length=1, max_length=4000)
    ticket: Text | None = None
    approver: Text | None = None
    expires: AwareDatetime = None

    @model_validator(mode="after")
    def _scope_value(self) -> AckBody:
        if self.scope is AckScopeKind.GLOBAL:
            if self.scope_value is not None:
                raise ValueError("scope_value must be empty for a global acknowledgement")
        elif self.scope_value is None:
            raise ValueError(f"scope_value is required for scope {self.scope.value!r}")
        elif self.scope is AckScopeKind.IMAGE and not _DIGEST.fullmatch(self.scope_value):
            raise ValueError("scope_value of an image acknowledgement must be its digest")
        if not self.justification.strip():
            raise ValueError("justification must not be blank")
        return self

    def document(self, requester: str) -> dict[str, Any]:
        """The canonical form the services store and apply compares."""
        return {
            "vulnerability": self.vulnerability,
            "scope": self.scope.value,
            "scope_value": self.scope_value,
            "package_name": self.package_name,
            "package_version": self.package_version,
            "path": self.path,
            "requester": requester,
            "justification": self.justification,
            "ticket": self.ticket,
            "approver": self.approver,
            "expires": self.expires.isoformat() if self.expires else None,
        }


class AckPatch(BaseModel):
    """PATCH: what may change without changing what the acknowledgement covers."""

    model_config = ConfigDict(extra="forbid")

    requester: Text | None = None
    justification: str | None = Field(default=None, min_length=1, max_length=4000)
    ticket: Text | None = None
    approver: Text | None = None
    expires: AwareDatetime = None


class AckPublic(BaseModel):
    id: str
    vulnerability: str
    scope: AckScopeKind
    scope_value: str | None
    package_name: str | None
    package_version: str | None
    path: str | None
    requester: str
    justification: str
    ticket: str | None
    approver: str | None
    created: datetime
    created_by: str | None
    expires: datetime | None
    revoked: datetime | None
    revoked_by: str | None
    state: str = Field(description="active | expired | revoked")
