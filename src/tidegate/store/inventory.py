"""Tables of the console's inventory and assurance state (Alembic revision 0002).

Owns: registries and repositories, images (by manifest digest, config digest and tag history),
their scan results (the `tidegate scan -f json` document with its DB snapshot), the latest verdict
of each image, image assurance policies with their version history, and acknowledgements.
Only services/ reads and writes these tables; routes never do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tidegate.store.base import Base, UTCDateTime

_TS = UTCDateTime()
_DIGEST = String(200)
_NAME = String(255)


class RegistryRow(Base):
    __tablename__ = "registries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(_NAME, unique=True)
    created: Mapped[datetime] = mapped_column(_TS)


class RepositoryRow(Base):
    __tablename__ = "repositories"
    __table_args__ = (UniqueConstraint("registry_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registry_id: Mapped[int] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(_NAME)
    created: Mapped[datetime] = mapped_column(_TS)


class ImageRow(Base):
    """One image. `digest` is its identity (manifest digest, else config digest); an image
    registered by reference and not scanned yet has no digest, only `reference`."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str | None] = mapped_column(_DIGEST, unique=True)
    manifest_digest: Mapped[str | None] = mapped_column(_DIGEST, index=True)
    config_digest: Mapped[str | None] = mapped_column(_DIGEST, index=True)
    reference: Mapped[str | None] = mapped_column(Text)
    """The reference it was registered or last scanned by."""
    registry_id: Mapped[int | None] = mapped_column(
        ForeignKey("registries.id", ondelete="SET NULL"), index=True
    )
    repository_id: Mapped[int | None] = mapped_column(
        ForeignKey("repositories.id", ondelete="SET NULL"), index=True
    )
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    first_seen: Mapped[datetime] = mapped_column(_TS)
    last_seen: Mapped[datetime] = mapped_column(_TS)
    status: Mapped[str] = mapped_column(String(20), index=True)
    status_reason: Mapped[str] = mapped_column(Text)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    latest_scan_id: Mapped[int | None] = mapped_column(Integer)
    """The newest row of scan_results for this image (no FK: the two tables point at each other)."""


class ImageTagRow(Base):
    """The tag history of an image: which repository:tag named it, first and last."""

    __tablename__ = "image_tags"
    __table_args__ = (
        UniqueConstraint("image_id", "repository_id", "tag"),
        Index("ix_image_tags_repository_id_tag", "repository_id", "tag"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(128))
    first_seen: Mapped[datetime] = mapped_column(_TS)
    last_seen: Mapped[datetime] = mapped_column(_TS)


class ScanResultRow(Base):
    __tablename__ = "scan_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The scan report document (tidegate.report.json_doc), findings re-matched in place."""
    db_snapshot: Mapped[str | None] = mapped_column(String(100))
    analyzers: Mapped[list[Any]] = mapped_column(JSON)
    scanned_at: Mapped[datetime] = mapped_column(_TS)
    received: Mapped[datetime] = mapped_column(_TS)


class VerdictRow(Base):
    """The latest verdict of an image; its history is in the events of each status change."""

    __tablename__ = "verdicts"

    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(20))
    verdict: Mapped[dict[str, Any]] = mapped_column(JSON)
    db_snapshot: Mapped[str | None] = mapped_column(String(100))
    evaluated_at: Mapped[datetime] = mapped_column(_TS)


class PolicyRow(Base):
    __tablename__ = "policies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(_NAME, index=True)
    """Unique among the policies not deleted (checked by services.policies)."""
    description: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(20))
    enabled: Mapped[bool] = mapped_column(Boolean)
    enforce_after: Mapped[datetime | None] = mapped_column(_TS)
    scope: Mapped[dict[str, Any]] = mapped_column(JSON)
    controls: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(_TS)
    updated: Mapped[datetime] = mapped_column(_TS)
    updated_by: Mapped[str | None] = mapped_column(_NAME)
    enforce_after_applied: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether the images were re-evaluated once `enforce_after` had passed."""
    deleted: Mapped[datetime | None] = mapped_column(_TS)
    """Deleted policies keep their row and their history; their name is free again."""


class PolicyVersionRow(Base):
    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("policy_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[str] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The policy in its API body form at this version."""
    changed: Mapped[datetime] = mapped_column(_TS)
    changed_by: Mapped[str | None] = mapped_column(_NAME)
    change: Mapped[str] = mapped_column(String(20))
    """"created" | "updated" | "deleted"."""


class AcknowledgementRow(Base):
    __tablename__ = "acknowledgements"
    __table_args__ = (Index("ix_acknowledgements_vulnerability", "vulnerability"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vulnerability: Mapped[str] = mapped_column(String(100))
    scope_kind: Mapped[str] = mapped_column(String(20))
    scope_value: Mapped[str | None] = mapped_column(Text)
    package_name: Mapped[str | None] = mapped_column(_NAME)
    package_version: Mapped[str | None] = mapped_column(_NAME)
    path: Mapped[str | None] = mapped_column(Text)
    requester: Mapped[str] = mapped_column(_NAME)
    justification: Mapped[str] = mapped_column(Text)
    ticket: Mapped[str | None] = mapped_column(_NAME)
    approver: Mapped[str | None] = mapped_column(_NAME)
    created: Mapped[datetime] = mapped_column(_TS)
    created_by: Mapped[str | None] = mapped_column(_NAME)
    expires: Mapped[datetime | None] = mapped_column(_TS, index=True)
    revoked: Mapped[datetime | None] = mapped_column(_TS)
    revoked_by: Mapped[str | None] = mapped_column(_NAME)
    expiry_recorded: Mapped[datetime | None] = mapped_column(_TS)
    """When the expiry event was recorded (None: not expired yet, or not noticed yet)."""
