"""API bodies of registries: create, patch, the public view (never a secret), connection tests,
pull runs, webhook answers and recorded webhook deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, model_validator

from tidegate.console.schemas.common import PublicModel, RequestBody
from tidegate.integrations.registries import RegistryKind
from tidegate.services.registries import Credentials, Retention, Scoping
from tidegate.store.deliveries import DeliveryStatus

__all__ = [
    "ConnectionReportPublic",
    "CredentialsBody",
    "DeliveryPublic",
    "PushEventPublic",
    "RegistryCreate",
    "RegistryCreated",
    "RegistryPatch",
    "RegistryPublic",
    "RetentionBody",
    "RunPublic",
    "ScopingBody",
    "WebhookAccepted",
    "WebhookSecret",
]

Glob = Annotated[str, Field(min_length=1, max_length=255)]
Positive = Annotated[int, Field(ge=1, le=100_000)]


class CredentialsBody(RequestBody):
    """A username and password (basic, or for the registry's token service), or a token."""

    username: str | None = Field(default=None, min_length=1, max_length=255)
    password: str | None = Field(default=None, max_length=4096)
    token: str | None = Field(default=None, min_length=1, max_length=8192)

    @model_validator(mode="after")
    def _one_kind(self) -> CredentialsBody:
        if bool(self.token) == bool(self.username):
            raise ValueError("give a username (and password), or a token")
        return self

    def domain(self) -> Credentials:
        return Credentials(self.username, self.password, self.token)


class ScopingBody(RequestBody):
    include: list[Glob] = Field(default_factory=list, description="Repository globs; []: all.")
    exclude: list[Glob] = Field(default_factory=list)
    tags: list[Glob] = Field(default_factory=list, description="Tag globs; []: all.")
    max_age_days: Positive | None = None
    max_tags_per_repo: Positive | None = None

    def domain(self) -> Scoping:
        return Scoping(tuple(self.include), tuple(self.exclude), tuple(self.tags),
                       self.max_age_days, self.max_tags_per_repo)  # fmt: skip


class RetentionBody(RequestBody):
    keep_last: Positive | None = Field(default=None, description="Newest N tags per repository.")
    keep_tags: list[Glob] = Field(default_factory=list, description="Only these tags (globs).")

    @model_validator(mode="after")
    def _one_rule(self) -> RetentionBody:
        if self.keep_last is not None and self.keep_tags:
            raise ValueError("give keep_last or keep_tags, not both")
        return self

    def domain(self) -> Retention:
        return Retention(self.keep_last, tuple(self.keep_tags))


class RegistryCreate(RequestBody):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    url: str = Field(min_length=8, max_length=1024, examples=["https://registry.example.com"])
    kind: RegistryKind = RegistryKind.DISTRIBUTION
    credentials: CredentialsBody | None = None
    insecure: bool = Field(default=False, description="Skip TLS verification.")
    ca_pem: str | None = Field(default=None, max_length=65536)
    schedule: str | None = Field(default=None, max_length=100, examples=["0 3 * * *"])
    scoping: ScopingBody = Field(default_factory=ScopingBody)
    retention: RetentionBody = Field(default_factory=RetentionBody)
    webhook_secret: str | None = Field(
        default=None, min_length=16, max_length=256, description="Default: the console makes one."
    )


class RegistryPatch(RequestBody):
    """Fields to change; `credentials: null` removes them."""

    url: str | None = Field(default=None, min_length=8, max_length=1024)
    kind: RegistryKind | None = None
    credentials: CredentialsBody | None = None
    insecure: bool | None = None
    ca_pem: str | None = Field(default=None, max_length=65536)
    schedule: str | None = Field(default=None, max_length=100)
    scoping: ScopingBody | None = None
    retention: RetentionBody | None = None

    def changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name in ("scoping", "retention", "credentials"):
                value = value.domain() if value is not None else None
                if value is None and name != "credentials":
                    continue
            elif value is None and name in ("url", "kind", "insecure"):
                continue
            out[name] = value
        return out


class RegistryPublic(PublicModel):
    name: str
    url: str
    host: str
    kind: RegistryKind
    auth: str = Field(description='"none" | "basic" | "token"; the credentials are never shown.')
    insecure: bool
    has_ca: bool
    schedule: str | None
    next_run: datetime | None
    scoping: dict[str, Any]
    retention: dict[str, Any]
    webhook_path: str
    created: datetime
    updated: datetime
    updated_by: str | None


class RegistryCreated(RegistryPublic):
    webhook_secret: str = Field(description="Shown this once: put it in the notification config.")


class WebhookSecret(PublicModel):
    webhook_secret: str


class ConnectionReportPublic(PublicModel):
    ok: bool
    message: str
    problem: str | None
    auth_scheme: str | None
    api_version: str | None


class RunPublic(PublicModel):
    id: int
    registry: str
    trigger: str
    state: str
    started: datetime
    finished: datetime
    added: list[str]
    kept: list[str]
    retired: list[str]
    errors: list[str]


class WebhookAccepted(PublicModel):
    """The delivery was recorded; its pushes are ingested (images, scan jobs) right after."""

    delivery: int = Field(description="Its id under /registries/{name}/deliveries.")
    status: DeliveryStatus
    events: int = Field(description="Manifest push events recorded.")
    ignored: int = Field(description="Other events of the body (pulls, blob pushes...).")


class PushEventPublic(PublicModel):
    """A recorded push (a field the store could not read shows as null)."""

    repository: str | None = None
    digest: str | None = None
    tag: str | None = None


class DeliveryPublic(PublicModel):
    """One recorded webhook delivery and what its ingestion did."""

    id: int
    registry: str
    received_at: datetime
    source: str
    status: DeliveryStatus
    attempts: int
    error: str | None = Field(description="Why the last ingestion attempt failed.")
    ingested_at: datetime | None
    events: list[PushEventPublic]
    ignored: int
    new_images: int | None = Field(description="Images it added (once ingested).")
    queued: int | None = Field(description="Scan jobs it queued (once ingested).")
