"""Tables of runtime protection (Alembic revision 0005).

Owns: runtime policies with their version history, services (named workload groups), enforcer
groups (token hash, mode, admission settings), the enforcers registered in them, and the
idempotency keys of the runtime events enforcers upload (the events themselves are rows of the
`events` table, category runtime). Only services/ reads and writes these tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tidegate.store.base import Base, BigIntId, UTCDateTime

_TS = UTCDateTime()
_NAME = String(255)


class RuntimePolicyRow(Base):
    __tablename__ = "runtime_policies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(_NAME, index=True)
    """Unique among the policies not deleted (checked by services.runtime)."""
    description: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(20))
    enabled: Mapped[bool] = mapped_column(Boolean)
    is_default: Mapped[bool] = mapped_column(Boolean)
    enforce_after: Mapped[datetime | None] = mapped_column(_TS)
    scope: Mapped[dict[str, Any]] = mapped_column(JSON)
    controls: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(_TS)
    updated: Mapped[datetime] = mapped_column(_TS)
    updated_by: Mapped[str | None] = mapped_column(_NAME)
    deleted: Mapped[datetime | None] = mapped_column(_TS)


class RuntimePolicyVersionRow(Base):
    __tablename__ = "runtime_policy_versions"
    __table_args__ = (UniqueConstraint("policy_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[str] = mapped_column(ForeignKey("runtime_policies.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    changed: Mapped[datetime] = mapped_column(_TS)
    changed_by: Mapped[str | None] = mapped_column(_NAME)
    change: Mapped[str] = mapped_column(String(20))


class RuntimeServiceRow(Base):
    __tablename__ = "runtime_services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(_NAME, unique=True)
    description: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer)
    rules: Mapped[list[Any]] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(_TS)
    updated: Mapped[datetime] = mapped_column(_TS)
    updated_by: Mapped[str | None] = mapped_column(_NAME)


class EnforcerGroupRow(Base):
    __tablename__ = "enforcer_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """sha256 of the group token; the token itself is shown once and never stored."""
    mode: Mapped[str] = mapped_column(String(20))
    mode_since: Mapped[datetime] = mapped_column(_TS)
    """When the group entered its current mode (readiness: how long it has been in audit)."""
    admission_enabled: Mapped[bool] = mapped_column(Boolean)
    fail_mode: Mapped[str] = mapped_column(String(20))
    audit_all: Mapped[bool] = mapped_column(Boolean)
    created: Mapped[datetime] = mapped_column(_TS)
    updated: Mapped[datetime] = mapped_column(_TS)
    updated_by: Mapped[str | None] = mapped_column(_NAME)


class EnforcerRow(Base):
    __tablename__ = "enforcers"
    __table_args__ = (UniqueConstraint("group_id", "hostname"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("enforcer_groups.id", ondelete="CASCADE"), index=True
    )
    hostname: Mapped[str] = mapped_column(_NAME)
    version: Mapped[str] = mapped_column(String(64))
    """The enforcer's software version."""
    registered: Mapped[datetime] = mapped_column(_TS)
    last_heartbeat: Mapped[datetime] = mapped_column(_TS)
    bundle_version: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[dict[str, Any]] = mapped_column(JSON)
    """What the enforcer last reported about itself (spool depth, hook installed, ...)."""


class RuntimeEventKeyRow(Base):
    """One uploaded runtime event: its idempotency key, so a batch sent twice stores it once."""

    __tablename__ = "runtime_event_keys"
    __table_args__ = (UniqueConstraint("group_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("enforcer_groups.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[int] = mapped_column(BigIntId)
    received: Mapped[datetime] = mapped_column(_TS)
