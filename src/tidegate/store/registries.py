"""Tables of on-boarded registries and their scheduled pulls (Alembic revision 0004).

Owns: `managed_registries` — what the operator registered (name, API URL, kind, TLS options,
credentials sealed with the operator's key, the webhook secret's sha256, the cron schedule, the
scoping and retention rules) — and `registry_runs`, the report of each pull (what it added, kept
and retired, and what went wrong). The inventory's own `registries` table (revision 0002) stays
the list of hosts images were seen on; a managed registry names its host there by `host`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tidegate.store.base import Base, UTCDateTime

_TS = UTCDateTime()


class ManagedRegistryRow(Base):
    __tablename__ = "managed_registries"
    __table_args__ = (Index("ix_managed_registries_next_run", "next_run"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(1024))
    """Base URL of the registry API ("https://registry.example.com", "http://127.0.0.1:5000")."""
    host: Mapped[str] = mapped_column(String(255), index=True)
    """host[:port] of `url`: the registry part of the references of its images."""
    kind: Mapped[str] = mapped_column(String(20))
    auth_kind: Mapped[str] = mapped_column(String(20))
    """"none" | "basic" | "token"."""
    credentials: Mapped[str | None] = mapped_column(Text)
    """Sealed JSON of the credentials (services.secrets_box), None when anonymous."""
    insecure: Mapped[bool] = mapped_column(Boolean, default=False)
    ca_pem: Mapped[str | None] = mapped_column(Text)
    webhook_secret_hash: Mapped[str] = mapped_column(String(64))
    """sha256 hex of the webhook secret: the secret is shown once and never stored."""
    schedule: Mapped[str | None] = mapped_column(String(100))
    next_run: Mapped[datetime | None] = mapped_column(_TS)
    scoping: Mapped[dict[str, Any]] = mapped_column(JSON)
    retention: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(_TS)
    updated: Mapped[datetime] = mapped_column(_TS)
    updated_by: Mapped[str | None] = mapped_column(String(128))


class RegistryRunRow(Base):
    """One pull of a registry: scheduled or asked for, with its outcome per image."""

    __tablename__ = "registry_runs"
    __table_args__ = (Index("ix_registry_runs_registry_id_id", "registry_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registry_id: Mapped[int] = mapped_column(
        ForeignKey("managed_registries.id", ondelete="CASCADE")
    )
    trigger: Mapped[str] = mapped_column(String(20))
    """"schedule" | "manual"."""
    state: Mapped[str] = mapped_column(String(20))
    """"done" | "failed"."""
    started: Mapped[datetime] = mapped_column(_TS)
    finished: Mapped[datetime] = mapped_column(_TS)
    added: Mapped[list[Any]] = mapped_column(JSON)
    """["host/repo:tag@digest", ...] new to the inventory."""
    kept: Mapped[list[Any]] = mapped_column(JSON)
    retired: Mapped[list[Any]] = mapped_column(JSON)
    errors: Mapped[list[Any]] = mapped_column(JSON)
