"""The mode rule of DESIGN.md, the one function every enforcement point uses.

A policy has a mode (audit | enforce) and so has each enforcement point (the CI `--enforce` flag,
an enforcer group, the admission controller). A violation is enforced only when both say enforce;
otherwise it is detected and let through. Every event carries the `ModeDecision` that says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tidegate.core.policy import Mode

__all__ = ["Action", "ModeDecision", "action_for", "decide", "effective_mode"]


class Action(StrEnum):
    """What an enforcement point does about one decision."""

    BLOCK = "block"
    """Violation, and both policy and point enforce: denied."""
    DETECT = "detect"
    """Violation, but policy or point is in audit: allowed, and recorded as "would have blocked"."""
    ALLOW = "allow"
    """No violation."""


def effective_mode(policy_mode: Mode, point_mode: Mode) -> Mode:
    """ENFORCE only when both the policy and the enforcement point are ENFORCE."""
    # `==`, not `is`: a plain "enforce" string read from a request or a bundle counts too.
    if policy_mode == Mode.ENFORCE and point_mode == Mode.ENFORCE:
        return Mode.ENFORCE
    return Mode.AUDIT


def action_for(violated: bool, policy_mode: Mode, point_mode: Mode) -> Action:
    """BLOCK a violation under an effective enforce, DETECT it otherwise; ALLOW no violation."""
    if not violated:
        return Action.ALLOW
    if effective_mode(policy_mode, point_mode) == Mode.ENFORCE:
        return Action.BLOCK
    return Action.DETECT


@dataclass(frozen=True, slots=True)
class ModeDecision:
    """The modes behind one decision, as every audit event records them."""

    policy_mode: Mode
    point_mode: Mode
    effective_mode: Mode
    action: Action

    @property
    def would_block(self) -> bool:
        """A violation that the effective audit mode let through (what a switch to enforce adds)."""
        return self.action is Action.DETECT


def decide(violated: bool, policy_mode: Mode, point_mode: Mode) -> ModeDecision:
    """The full decision for one violation check at one enforcement point."""
    policy, point = Mode(policy_mode), Mode(point_mode)
    return ModeDecision(
        policy_mode=policy,
        point_mode=point,
        effective_mode=effective_mode(policy, point),
        action=action_for(violated, policy, point),
    )
