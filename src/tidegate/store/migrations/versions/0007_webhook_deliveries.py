"""Webhook deliveries: each accepted registry push notification, recorded with one INSERT and
ingested (images, tags, scan jobs) in batches afterwards.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _BIGID, nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("ignored", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("ingested_at", _TS, nullable=True),
        sa.Column("new_images", sa.Integer(), nullable=True),
        sa.Column("queued", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["managed_registries.id"],
            name="fk_webhook_deliveries_registry_id_managed_registries",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
    )
    op.create_index("ix_webhook_deliveries_status_id", "webhook_deliveries", ["status", "id"])
    op.create_index(
        "ix_webhook_deliveries_registry_id_id", "webhook_deliveries", ["registry_id", "id"]
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
