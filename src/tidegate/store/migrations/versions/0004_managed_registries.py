"""Managed registries (connection, sealed credentials, webhook secret hash, schedule, scoping and
retention rules) and the reports of their pulls.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "managed_registries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("auth_kind", sa.String(20), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=True),
        sa.Column("insecure", sa.Boolean(), nullable=False),
        sa.Column("ca_pem", sa.Text(), nullable=True),
        sa.Column("webhook_secret_hash", sa.String(64), nullable=False),
        sa.Column("schedule", sa.String(100), nullable=True),
        sa.Column("next_run", _TS, nullable=True),
        sa.Column("scoping", sa.JSON(), nullable=False),
        sa.Column("retention", sa.JSON(), nullable=False),
        sa.Column("created", _TS, nullable=False),
        sa.Column("updated", _TS, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_managed_registries"),
        sa.UniqueConstraint("name", name="uq_managed_registries_name"),
    )
    op.create_index("ix_managed_registries_host", "managed_registries", ["host"])
    op.create_index("ix_managed_registries_next_run", "managed_registries", ["next_run"])
    op.create_table(
        "registry_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("started", _TS, nullable=False),
        sa.Column("finished", _TS, nullable=False),
        sa.Column("added", sa.JSON(), nullable=False),
        sa.Column("kept", sa.JSON(), nullable=False),
        sa.Column("retired", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["managed_registries.id"],
            name="fk_registry_runs_registry_id_managed_registries",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_registry_runs"),
    )
    op.create_index("ix_registry_runs_registry_id_id", "registry_runs", ["registry_id", "id"])


def downgrade() -> None:
    op.drop_table("registry_runs")
    op.drop_table("managed_registries")
