"""Tables of image profiling (Alembic revision 0006).

Owns: runtime profiles (one per name, for one image repository) with their version history,
profiling sessions, the containers an enforcer reported in a session, and the observations
recorded while profiling (unique per session by idempotency key, so a batch sent twice is stored
once). Only services/ reads and writes these tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tidegate.store.base import Base, BigIntId, UTCDateTime

_TS = UTCDateTime()
_NAME = String(255)
_REPOSITORY = String(512)


class RuntimeProfileRow(Base):
    __tablename__ = "runtime_profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(_NAME, unique=True)
    repository: Mapped[str] = mapped_column(_REPOSITORY, index=True)
    mode: Mapped[str] = mapped_column(String(20))
    mode_since: Mapped[datetime] = mapped_column(_TS)
    """When the profile was applied or last switched mode: readiness counts events from here."""
    source: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    """Executables, volumes, listeners, outbound endpoints and learned-from digests."""
    applied_at: Mapped[datetime] = mapped_column(_TS)
    updated: Mapped[datetime] = mapped_column(_TS)
    updated_by: Mapped[str | None] = mapped_column(_NAME)


class RuntimeProfileVersionRow(Base):
    __tablename__ = "runtime_profile_versions"
    __table_args__ = (UniqueConstraint("profile_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("runtime_profiles.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The whole profile as `core.profile.profile_to_json` wrote it at this version."""
    changed: Mapped[datetime] = mapped_column(_TS)
    changed_by: Mapped[str | None] = mapped_column(_NAME)
    change: Mapped[str] = mapped_column(String(20))


class ProfilingSessionRow(Base):
    __tablename__ = "profiling_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile_name: Mapped[str] = mapped_column(_NAME, index=True)
    active_profile: Mapped[str | None] = mapped_column(_NAME, unique=True)
    """The profile name while the session is active, NULL once stopped: the unique constraint
    makes "one active session per profile" hold even against concurrent starts."""
    repository: Mapped[str] = mapped_column(_REPOSITORY)
    digest: Mapped[str | None] = mapped_column(String(100))
    append: Mapped[bool] = mapped_column(Boolean)
    origin: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(_TS)
    started_by: Mapped[str] = mapped_column(_NAME)
    ends_at: Mapped[datetime | None] = mapped_column(_TS)
    stopped_at: Mapped[datetime | None] = mapped_column(_TS)
    stopped_by: Mapped[str | None] = mapped_column(_NAME)
    applied_to: Mapped[int | None] = mapped_column(
        ForeignKey("runtime_profiles.id", ondelete="SET NULL")
    )
    """The profile row its stop built (readiness: the sessions a profile was learned from)."""


class ProfilingContainerRow(Base):
    """A container an enforcer reported in a session (env-started sessions end with the last)."""

    __tablename__ = "profiling_containers"
    __table_args__ = (UniqueConstraint("session_id", "container_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("profiling_sessions.id", ondelete="CASCADE"))
    container_id: Mapped[str] = mapped_column(String(128), index=True)
    joined: Mapped[datetime] = mapped_column(_TS)
    exited: Mapped[datetime | None] = mapped_column(_TS)


class ProfileObservationRow(Base):
    __tablename__ = "profile_observations"
    __table_args__ = (UniqueConstraint("session_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("profiling_sessions.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(20))
    container_id: Mapped[str] = mapped_column(String(128))
    observed_at: Mapped[datetime] = mapped_column(_TS)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    received: Mapped[datetime] = mapped_column(_TS)
