"""Helpers of the enforcer tests: bundles built in the test, agents deciding from a cached one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tidegate.client.base import ConsoleClient
from tidegate.core.bundle import (
    EnforcerGroupInfo,
    FailMode,
    ImageRecord,
    PolicyBundle,
    build_bundle,
    build_image_index,
    bundle_to_json,
)
from tidegate.core.policy import Mode
from tidegate.core.runtime import (
    ImageStateKind,
    RuntimeControls,
    RuntimePolicy,
    RuntimePolicyId,
    default_runtime_policy,
)
from tidegate.enforcer.agent import Agent
from tidegate.enforcer.state import StateDir

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
APPROVED = "sha256:" + "a1" * 32
DISALLOWED = "sha256:" + "d1" * 32
UNREACHABLE = "http://127.0.0.1:9"
"""The discard port: nothing listens, so the agent decides from its cached bundle only."""


def strict_policy(mode: Mode) -> RuntimePolicy:
    return RuntimePolicy(
        id=RuntimePolicyId("strict"),
        name="strict",
        mode=mode,
        controls=RuntimeControls(
            block_unregistered=True,
            block_disallowed=True,
            block_privileged=True,
            block_host_network=True,
            block_root=True,
            blocked_capabilities=("SYS_ADMIN", "NET_ADMIN"),
        ),
    )


def bundle(
    *, policy_mode: Mode, group_mode: Mode, fail_mode: FailMode = FailMode.OPEN
) -> PolicyBundle:
    images = build_image_index(
        [
            ImageRecord(
                ImageStateKind.REGISTERED_APPROVED,
                APPROVED,
                names=("reg.example.com/team/app:1.0",),
            ),
            ImageRecord(
                ImageStateKind.REGISTERED_DISALLOWED,
                DISALLOWED,
                names=("reg.example.com/team/bad:2.0",),
                reason="policy 'prod' failed: severity",
            ),
        ]
    )
    return build_bundle(
        group=EnforcerGroupInfo(name="k8s", mode=group_mode, fail_mode=fail_mode),
        policies=[default_runtime_policy(), strict_policy(policy_mode)],
        services=(),
        images=images,
        now=NOW,
    )


def cached_agent(state_dir: Path, policy_bundle: PolicyBundle) -> Agent:
    """An agent whose console is unreachable, deciding from `policy_bundle` cached on disk."""
    state = StateDir(state_dir).create()
    state.bundle.write_bytes(bundle_to_json(policy_bundle))
    return Agent(
        ConsoleClient(UNREACHABLE, "t", timeout=1), state, hostname="node-1", clock=lambda: NOW
    )
