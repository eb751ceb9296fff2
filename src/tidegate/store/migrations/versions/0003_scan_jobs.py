"""The scan job queue: `scan_jobs`, with its claim and reclaim indexes and the partial unique
index that keeps one open job per image.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_OPEN = "state IN ('queued', 'running', 'failed')"
"""A copy (migrations are frozen in time) of store.jobs.OPEN_JOB_PREDICATE."""


def upgrade() -> None:
    op.create_table(
        "scan_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(200), nullable=True),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("registry_name", sa.String(255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires", _TS, nullable=True),
        sa.Column("heartbeat_at", _TS, nullable=True),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("scan_id", sa.Integer(), nullable=True),
        sa.Column("created", _TS, nullable=False),
        sa.Column("updated", _TS, nullable=False),
        sa.Column("finished", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name="fk_scan_jobs_image_id_images",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_scan_jobs"),
    )
    op.create_index("ix_scan_jobs_image_id", "scan_jobs", ["image_id"])
    op.create_index("ix_scan_jobs_state_next_attempt_at", "scan_jobs", ["state", "next_attempt_at"])
    op.create_index("ix_scan_jobs_state_lease_expires", "scan_jobs", ["state", "lease_expires"])
    op.create_index(
        "uq_scan_jobs_open_image_id",
        "scan_jobs",
        ["image_id"],
        unique=True,
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )


def downgrade() -> None:
    op.drop_index("uq_scan_jobs_open_image_id", table_name="scan_jobs")
    op.drop_index("ix_scan_jobs_state_lease_expires", table_name="scan_jobs")
    op.drop_index("ix_scan_jobs_state_next_attempt_at", table_name="scan_jobs")
    op.drop_index("ix_scan_jobs_image_id", table_name="scan_jobs")
    op.drop_table("scan_jobs")
