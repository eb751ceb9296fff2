"""API bodies of the image inventory: registration (a scan result, or a reference) and views."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidegate.core.policy import ImageStatus
from tidegate.report.json_doc import ReportDocument

__all__ = ["ImageCreate", "ImageDetailPublic", "ImagePublic", "ScanPublic"]


class ImageCreate(BaseModel):
    """Either `scan` (the `tidegate scan -f json` document) or `reference` ("host/repo:tag")."""

    model_config = ConfigDict(extra="forbid")

    scan: ReportDocument | None = None
    reference: str | None = Field(default=None, min_length=1, max_length=1024)
    registry: str | None = Field(default=None, max_length=255, description="Overrides the scan's.")
    repository: str | None = Field(default=None, max_length=255)
    tag: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _one_of(self) -> ImageCreate:
        if (self.scan is None) == (self.reference is None):
            raise ValueError("give exactly one of `scan` (a scan result) or `reference`")
        if self.scan is not None and not (
            self.scan.image.manifest_digest or self.scan.image.config_digest
        ):
            raise ValueError("scan.image needs a manifest_digest or a config_digest")
        return self


class ImagePublic(BaseModel):
    id: int
    digest: str | None
    manifest_digest: str | None
    config_digest: str | None = Field(description="The image ID container runtimes report.")
    reference: str | None
    registry: str | None
    repository: str | None
    tags: list[str] = Field(description="host/repo:tag, most recently seen first.")
    labels: dict[str, str]
    first_seen: datetime
    last_seen: datetime
    status: ImageStatus
    status_reason: str
    retired: bool


class ScanPublic(BaseModel):
    scanned_at: datetime
    db_snapshot: str | None
    analyzers: list[Any]
    os: dict[str, Any] | None
    facts: dict[str, Any] = Field(description="The image config facts (user, labels, env...).")
    packages: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    secrets: list[dict[str, Any]]
    unknowns: list[dict[str, Any]]


class ImageDetailPublic(ImagePublic):
    scan: ScanPublic | None
    verdict: dict[str, Any] | None = Field(
        description="Every applicable policy, its mode, failures and acknowledged findings."
    )
