"""Runtime protection: runtime policies with their history (and the default global policy, in
audit mode, with volume blacklist and drift prevention on), services, enforcer groups, enforcers,
and the idempotency keys of uploaded runtime events.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

DEFAULT_RUNTIME_POLICY_ID = "default"
# Frozen here as of this revision (a migration never imports the code it migrates).
DEFAULT_RUNTIME_POLICY: dict[str, Any] = {
    "name": "Default runtime policy",
    "description": "Covers every container; blacklisted host mounts and drift are detected.",
    "mode": "audit",
    "enabled": True,
    "enforce_after": None,
    "scope": {},
    "controls": {
        "volume_blacklist": [
            "/",
            "/etc",
            "/var/run/docker.sock",
            "/run/docker.sock",
            "/run/containerd/containerd.sock",
            "/var/run/crio/crio.sock",
            "/run/podman/podman.sock",
            "/proc",
            "/sys",
            "/boot",
            "/dev",
            "/root",
            "/home",
            "/var/lib/kubelet",
            "/var/lib/docker",
            "/var/lib/containers",
            "/var/lib/containerd",
            "/etc/kubernetes",
        ],
        "drift_prevention": True,
    },
}


def _policies() -> None:
    op.create_table(
        "runtime_policies",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("enforce_after", _TS, nullable=True),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("controls", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created", _TS, nullable=False),
        sa.Column("updated", _TS, nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.Column("deleted", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runtime_policies"),
    )
    op.create_index("ix_runtime_policies_name", "runtime_policies", ["name"])
    op.create_table(
        "runtime_policy_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("changed", _TS, nullable=False),
        sa.Column("changed_by", sa.String(255), nullable=True),
        sa.Column("change", sa.String(20), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["runtime_policies.id"],
            name="fk_runtime_policy_versions_policy_id_runtime_policies",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_runtime_policy_versions"),
        sa.UniqueConstraint(
            "policy_id", "version", name="uq_runtime_policy_versions_policy_id_version"
        ),
    )


def _services_and_groups() -> None:
    op.create_table(
        "runtime_services",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created", _TS, nullable=False),
        sa.Column("updated", _TS, nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runtime_services"),
        sa.UniqueConstraint("name", name="uq_runtime_services_name"),
    )
    op.create_table(
        "enforcer_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("mode_since", _TS, nullable=False),
        sa.Column("admission_enabled", sa.Boolean(), nullable=False),
        sa.Column("fail_mode", sa.String(20), nullable=False),
        sa.Column("audit_all", sa.Boolean(), nullable=False),
        sa.Column("created", _TS, nullable=False),
        sa.Column("updated", _TS, nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_enforcer_groups"),
        sa.UniqueConstraint("name", name="uq_enforcer_groups_name"),
        sa.UniqueConstraint("token_hash", name="uq_enforcer_groups_token_hash"),
    )


def _enforcers_and_event_keys() -> None:
    op.create_table(
        "enforcers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("registered", _TS, nullable=False),
        sa.Column("last_heartbeat", _TS, nullable=False),
        sa.Column("bundle_version", sa.String(80), nullable=True),
        sa.Column("status", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["enforcer_groups.id"],
            name="fk_enforcers_group_id_enforcer_groups",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_enforcers"),
        sa.UniqueConstraint("group_id", "hostname", name="uq_enforcers_group_id_hostname"),
    )
    op.create_index("ix_enforcers_group_id", "enforcers", ["group_id"])
    op.create_table(
        "runtime_event_keys",
        sa.Column("id", _BIGID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("event_id", _BIGID, nullable=False),
        sa.Column("received", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["enforcer_groups.id"],
            name="fk_runtime_event_keys_group_id_enforcer_groups",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_runtime_event_keys"),
        sa.UniqueConstraint(
            "group_id", "idempotency_key", name="uq_runtime_event_keys_group_id_idempotency_key"
        ),
    )


def _default_policy() -> None:
    now = datetime.now(UTC)
    policies = sa.table(
        "runtime_policies",
        *(sa.column(n) for n in ("id", "name", "description", "mode", "version", "updated_by")),
        sa.column("enabled", sa.Boolean()),
        sa.column("is_default", sa.Boolean()),
        sa.column("enforce_after", _TS),
        sa.column("scope", sa.JSON()),
        sa.column("controls", sa.JSON()),
        sa.column("created", _TS),
        sa.column("updated", _TS),
    )
    versions = sa.table(
        "runtime_policy_versions",
        *(sa.column(n) for n in ("policy_id", "version", "changed_by", "change")),
        sa.column("document", sa.JSON()),
        sa.column("changed", _TS),
    )
    p = DEFAULT_RUNTIME_POLICY
    op.bulk_insert(
        policies,
        [
            {
                "id": DEFAULT_RUNTIME_POLICY_ID,
                "name": p["name"],
                "description": p["description"],
                "mode": p["mode"],
                "enabled": True,
                "is_default": True,
                "version": 1,
                "enforce_after": None,
                "scope": p["scope"],
                "controls": p["controls"],
                "created": now,
                "updated": now,
                "updated_by": "system",
            }
        ],
    )
    op.bulk_insert(
        versions,
        [
            {
                "policy_id": DEFAULT_RUNTIME_POLICY_ID,
                "version": 1,
                "document": p,
                "changed": now,
                "changed_by": "system",
                "change": "created",
            }
        ],
    )


def upgrade() -> None:
    _policies()
    _services_and_groups()
    _enforcers_and_event_keys()
    _default_policy()


def downgrade() -> None:
    for table in (
        "runtime_event_keys",
        "enforcers",
        "enforcer_groups",
        "runtime_services",
        "runtime_policy_versions",
        "runtime_policies",
    ):
        op.drop_table(table)
