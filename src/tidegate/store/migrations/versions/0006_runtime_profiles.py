"""Image profiling: runtime profiles with their history, profiling sessions, the containers an
enforcer reported in each session, and the observations (executables, volumes, listeners,
outbound connections) recorded while profiling, each stored once by its idempotency key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _profiles() -> None:
    op.create_table(
        "runtime_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("repository", sa.String(512), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("mode_since", _TS, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("applied_at", _TS, nullable=False),
        sa.Column("updated", _TS, nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runtime_profiles"),
        sa.UniqueConstraint("name", name="uq_runtime_profiles_name"),
    )
    op.create_index("ix_runtime_profiles_repository", "runtime_profiles", ["repository"])
    op.create_table(
        "runtime_profile_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("changed", _TS, nullable=False),
        sa.Column("changed_by", sa.String(255), nullable=True),
        sa.Column("change", sa.String(20), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["runtime_profiles.id"],
            name="fk_runtime_profile_versions_profile_id_runtime_profiles",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_runtime_profile_versions"),
        sa.UniqueConstraint(
            "profile_id", "version", name="uq_runtime_profile_versions_profile_id_version"
        ),
    )


def _sessions() -> None:
    op.create_table(
        "profiling_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("profile_name", sa.String(255), nullable=False),
        sa.Column("active_profile", sa.String(255), nullable=True),
        sa.Column("repository", sa.String(512), nullable=False),
        sa.Column("digest", sa.String(100), nullable=True),
        sa.Column("append", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("started_by", sa.String(255), nullable=False),
        sa.Column("ends_at", _TS, nullable=True),
        sa.Column("stopped_at", _TS, nullable=True),
        sa.Column("stopped_by", sa.String(255), nullable=True),
        sa.Column("applied_to", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["applied_to"],
            ["runtime_profiles.id"],
            name="fk_profiling_sessions_applied_to_runtime_profiles",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_profiling_sessions"),
        sa.UniqueConstraint("active_profile", name="uq_profiling_sessions_active_profile"),
    )
    op.create_index("ix_profiling_sessions_profile_name", "profiling_sessions", ["profile_name"])
    op.create_table(
        "profiling_containers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("container_id", sa.String(128), nullable=False),
        sa.Column("joined", _TS, nullable=False),
        sa.Column("exited", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["profiling_sessions.id"],
            name="fk_profiling_containers_session_id_profiling_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_profiling_containers"),
        sa.UniqueConstraint(
            "session_id", "container_id", name="uq_profiling_containers_session_id_container_id"
        ),
    )
    op.create_index(
        "ix_profiling_containers_container_id", "profiling_containers", ["container_id"]
    )


def _observations() -> None:
    op.create_table(
        "profile_observations",
        sa.Column("id", _BIGID, autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("container_id", sa.String(128), nullable=False),
        sa.Column("observed_at", _TS, nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("received", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["profiling_sessions.id"],
            name="fk_profile_observations_session_id_profiling_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_profile_observations"),
        sa.UniqueConstraint(
            "session_id",
            "idempotency_key",
            name="uq_profile_observations_session_id_idempotency_key",
        ),
    )


def upgrade() -> None:
    _profiles()
    _sessions()
    _observations()


def downgrade() -> None:
    for table in (
        "profile_observations",
        "profiling_containers",
        "profiling_sessions",
        "runtime_profile_versions",
        "runtime_profiles",
    ):
        op.drop_table(table)
