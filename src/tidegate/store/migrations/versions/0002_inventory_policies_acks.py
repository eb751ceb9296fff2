"""Inventory (registries, repositories, images, tags, scan results, verdicts), image assurance
policies with their history, acknowledgements; and the default policy, in audit mode.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)

DEFAULT_POLICY_ID = "default"
DEFAULT_POLICY = {
    "name": "default",
    "description": (
        "Out-of-the-box policy, in audit mode: reports critical vulnerabilities that have a fix. "
        "It blocks nothing until its mode is set to enforce."
    ),
    "mode": "audit",
    "enabled": True,
    "enforce_after": None,
    "scope": {"registries": [], "repositories": [], "labels": []},
    "controls": {"severity": {"max_severity": "high", "only_fixable": True}},
}
"""A copy (migrations are frozen in time) of services.policies.DEFAULT_POLICY."""


def _registries_and_repositories() -> None:
    op.create_table(
        "registries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("created", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registries"),
        sa.UniqueConstraint("host", name="uq_registries_host"),
    )
    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["registries.id"],
            name="fk_repositories_registry_id_registries",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_repositories"),
        sa.UniqueConstraint("registry_id", "name", name="uq_repositories_registry_id_name"),
    )


def _images() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(200), nullable=True),
        sa.Column("manifest_digest", sa.String(200), nullable=True),
        sa.Column("config_digest", sa.String(200), nullable=True),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("registry_id", sa.Integer(), nullable=True),
        sa.Column("repository_id", sa.Integer(), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("latest_scan_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["registries.id"],
            name="fk_images_registry_id_registries",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name="fk_images_repository_id_repositories",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_images"),
        sa.UniqueConstraint("digest", name="uq_images_digest"),
    )
    for column in ("manifest_digest", "config_digest", "registry_id", "repository_id", "status"):
        op.create_index(f"ix_images_{column}", "images", [column])
    op.create_table(
        "image_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_image_tags_image_id_images", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name="fk_image_tags_repository_id_repositories",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_image_tags"),
        sa.UniqueConstraint(
            "image_id", "repository_id", "tag", name="uq_image_tags_image_id_repository_id_tag"
        ),
    )
    op.create_index("ix_image_tags_image_id", "image_tags", ["image_id"])
    op.create_index("ix_image_tags_repository_id_tag", "image_tags", ["repository_id", "tag"])


def _scans_and_verdicts() -> None:
    op.create_table(
        "scan_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("db_snapshot", sa.String(100), nullable=True),
        sa.Column("analyzers", sa.JSON(), nullable=False),
        sa.Column("scanned_at", _TS, nullable=False),
        sa.Column("received", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_scan_results_image_id_images", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_scan_results"),
    )
    op.create_index("ix_scan_results_image_id", "scan_results", ["image_id"])
    op.create_table(
        "verdicts",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("verdict", sa.JSON(), nullable=False),
        sa.Column("db_snapshot", sa.String(100), nullable=True),
        sa.Column("evaluated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_verdicts_image_id_images", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("image_id", name="pk_verdicts"),
    )


def _policies() -> None:
    op.create_table(
        "policies",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("enforce_after", _TS, nullable=True),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("controls", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created", _TS, nullable=False),
        sa.Column("updated", _TS, nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.Column("enforce_after_applied", sa.Boolean(), nullable=False),
        sa.Column("deleted", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_policies"),
    )
    op.create_index("ix_policies_name", "policies", ["name"])
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("changed", _TS, nullable=False),
        sa.Column("changed_by", sa.String(255), nullable=True),
        sa.Column("change", sa.String(20), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
            name="fk_policy_versions_policy_id_policies",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_policy_versions"),
        sa.UniqueConstraint("policy_id", "version", name="uq_policy_versions_policy_id_version"),
    )


def _acknowledgements() -> None:
    op.create_table(
        "acknowledgements",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("vulnerability", sa.String(100), nullable=False),
        sa.Column("scope_kind", sa.String(20), nullable=False),
        sa.Column("scope_value", sa.Text(), nullable=True),
        sa.Column("package_name", sa.String(255), nullable=True),
        sa.Column("package_version", sa.String(255), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("requester", sa.String(255), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("ticket", sa.String(255), nullable=True),
        sa.Column("approver", sa.String(255), nullable=True),
        sa.Column("created", _TS, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("expires", _TS, nullable=True),
        sa.Column("revoked", _TS, nullable=True),
        sa.Column("revoked_by", sa.String(255), nullable=True),
        sa.Column("expiry_recorded", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_acknowledgements"),
    )
    op.create_index("ix_acknowledgements_vulnerability", "acknowledgements", ["vulnerability"])
    op.create_index("ix_acknowledgements_expires", "acknowledgements", ["expires"])


def _default_policy() -> None:
    now = datetime.now(UTC)
    policies = sa.table(
        "policies",
        *(sa.column(n) for n in ("id", "name", "description", "mode", "enabled", "version")),
        sa.column("enforce_after", _TS),
        sa.column("scope", sa.JSON()),
        sa.column("controls", sa.JSON()),
        sa.column("created", _TS),
        sa.column("updated", _TS),
        sa.column("updated_by"),
        sa.column("enforce_after_applied", sa.Boolean()),
    )
    versions = sa.table(
        "policy_versions",
        sa.column("policy_id"),
        sa.column("version"),
        sa.column("document", sa.JSON()),
        sa.column("changed", _TS),
        sa.column("changed_by"),
        sa.column("change"),
    )
    p = DEFAULT_POLICY
    op.bulk_insert(
        policies,
        [
            {
                "id": DEFAULT_POLICY_ID,
                "name": p["name"],
                "description": p["description"],
                "mode": p["mode"],
                "enabled": True,
                "version": 1,
                "enforce_after": None,
                "scope": p["scope"],
                "controls": p["controls"],
                "created": now,
                "updated": now,
                "updated_by": "system",
                "enforce_after_applied": False,
            }
        ],
    )
    op.bulk_insert(
        versions,
        [
            {
                "policy_id": DEFAULT_POLICY_ID,
                "version": 1,
                "document": p,
                "changed": now,
                "changed_by": "system",
                "change": "created",
            }
        ],
    )


def upgrade() -> None:
    _registries_and_repositories()
    _images()
    _scans_and_verdicts()
    _policies()
    _acknowledgements()
    _default_policy()


def downgrade() -> None:
    for table in (
        "acknowledgements",
        "policy_versions",
        "policies",
        "verdicts",
        "scan_results",
        "image_tags",
        "images",
        "repositories",
        "registries",
    ):
        op.drop_table(table)
