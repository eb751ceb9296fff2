"""The mode rule of DESIGN.md: every combination of policy mode, point mode and violation."""

from __future__ import annotations

import dataclasses

import pytest

from tidegate.core.modes import Action, ModeDecision, action_for, decide, effective_mode
from tidegate.core.policy import Mode

A, E = Mode.AUDIT, Mode.ENFORCE

# policy mode, point mode, effective mode, action on a violation
TABLE = [
    (A, A, A, Action.DETECT),
    (A, E, A, Action.DETECT),
    (E, A, A, Action.DETECT),
    (E, E, E, Action.BLOCK),
]


@pytest.mark.parametrize(("policy", "point", "effective", "action"), TABLE)
def test_violation(policy: Mode, point: Mode, effective: Mode, action: Action) -> None:
    assert effective_mode(policy, point) is effective
    assert action_for(True, policy, point) is action
    decision = decide(True, policy, point)
    assert decision == ModeDecision(policy, point, effective, action)
    assert decision.would_block is (action is Action.DETECT)


@pytest.mark.parametrize(("policy", "point", "effective", "action"), TABLE)
def test_no_violation_is_allowed_in_every_mode(
    policy: Mode, point: Mode, effective: Mode, action: Action
) -> None:
    assert action_for(False, policy, point) is Action.ALLOW
    decision = decide(False, policy, point)
    assert decision.action is Action.ALLOW
    assert decision.effective_mode is effective
    assert not decision.would_block


def test_plain_strings_from_requests_count_as_modes() -> None:
    assert decide(True, "enforce", "enforce").action is Action.BLOCK  # type: ignore[arg-type]
    assert decide(True, "enforce", "audit").effective_mode is Mode.AUDIT  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'block'"):
        decide(True, "block", "enforce")  # type: ignore[arg-type]


def test_decision_is_a_frozen_value_events_can_carry() -> None:
    decision = decide(True, E, E)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.action = Action.ALLOW  # type: ignore[misc]
    assert {decision: 1}[decide(True, E, E)] == 1
    assert [a.value for a in Action] == ["block", "detect", "allow"]
