"""`tidegate scan --console`: the gate against a real console (uvicorn, SQLite and PostgreSQL).

The demo image has lodash 4.17.15 (a high vulnerability, fixed in 4.17.21); the policy under
test allows at most medium, so it fails on lodash. What varies is the policy's mode and the
pipeline's flag; only enforce x enforce fails the build.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from gate_support import ScanFn

from tidegate.cli.exit_codes import ExitCode
from tidegate.core.roles import Role

IMAGE_NAME = "registry.example.com:5000/team/app:1.4.2"
LODASH_ALIAS = "GHSA-35jh-r3h4-6jhm"


def _policy(mode: str) -> dict[str, Any]:
    return {
        "name": "ci-gate",
        "mode": mode,
        "scope": {"repositories": ["team/*"]},
        "controls": {"severity": {"max_severity": "medium"}},
    }


def _api(url: str, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=30)


def _create(url: str, headers: dict[str, str], path: str, body: dict[str, Any]) -> None:
    with _api(url, headers) as api:
        answer = api.post(path, json=body)
    assert answer.status_code == 201, answer.text


def _gate_args(url: str, token: str, *extra: str) -> tuple[str, ...]:
    return ("--console", url, "--token", token, "--image-name", IMAGE_NAME, "-f", "json", *extra)


@pytest.mark.parametrize(
    ("policy_mode", "flag", "code", "says", "verdict"),
    [
        (
            "enforce",
            "--enforce",
            ExitCode.POLICY_FAILED,
            ["this fails the build", "BUILD FAILED", "ci-gate"],
            "disallowed",
        ),
        (
            "enforce",
            "--no-enforce",
            ExitCode.OK,
            ["(enforce mode) failed: severity", "WOULD FAIL with --enforce"],
            "disallowed",
        ),
        ("audit", "--enforce", ExitCode.OK, ["(audit mode) failed", "audit-only"], "approved"),
        ("audit", "--no-enforce", ExitCode.OK, ["(audit mode) failed", "audit-only"], "approved"),
    ],
    ids=[
        "enforce-policy/enforce-flag",
        "enforce-policy/audit-flag",
        "audit/enforce",
        "audit/audit",
    ],
)
def test_policy_mode_times_pipeline_flag(
    live_console: str,
    headers_for: Callable[[Role], dict[str, str]],
    token_for: Callable[[Role], str],
    scan: ScanFn,
    policy_mode: str,
    flag: str,
    code: ExitCode,
    says: list[str],
    verdict: str,
) -> None:
    _create(live_console, headers_for(Role.SECURITY_ANALYST), "/policies", _policy(policy_mode))
    run = scan(*_gate_args(live_console, token_for(Role.CI), flag))
    assert run.code == code, run.err
    for text in says:
        assert text in run.err
    assert "upgrade lodash to 4.17.21" in run.err
    if code is ExitCode.OK:
        assert "BUILD FAILED" not in run.err
    if policy_mode == "audit":
        assert "WOULD FAIL" not in run.err
    document = json.loads(run.out)
    assert document["verdict"]["status"] == verdict
    names = [r["name"] for r in document["verdict"]["policies"]]
    assert names == ["ci-gate", "default"]  # the console sent what applies, and only that


@pytest.mark.parametrize(
    ("scope", "scope_value", "code"),
    [
        ("global", None, ExitCode.OK),
        ("repository", "registry.example.com:5000/team/app", ExitCode.OK),
        ("repository", "other/app", ExitCode.POLICY_FAILED),
    ],
    ids=["global", "this-repository", "other-repository"],
)
def test_acknowledged_finding_does_not_fail_the_build(
    live_console: str,
    headers_for: Callable[[Role], dict[str, str]],
    token_for: Callable[[Role], str],
    scan: ScanFn,
    scope: str,
    scope_value: str | None,
    code: ExitCode,
) -> None:
    analyst = headers_for(Role.SECURITY_ANALYST)
    _create(live_console, analyst, "/policies", _policy("enforce"))
    ack: dict[str, Any] = {
        "vulnerability": LODASH_ALIAS,  # the finding is CVE-2021-23337: aliases count
        "scope": scope,
        "justification": "lodash.template is never called with user input",
        "ticket": "SEC-42",
    }
    if scope_value is not None:
        ack["scope_value"] = scope_value
    _create(live_console, analyst, "/acknowledgements", ack)
    run = scan(*_gate_args(live_console, token_for(Role.CI), "--enforce"))
    assert run.code == code, run.err
    if code is ExitCode.OK:
        assert "1 finding(s) set aside by acknowledgements" in run.err
        document = json.loads(run.out)
        acknowledged = document["verdict"]["policies"][0]["acknowledged"]
        assert [a["finding"].split()[0] for a in acknowledged] == ["CVE-2021-23337"]
    else:
        assert "BUILD FAILED" in run.err


def test_registration_and_ci_event_are_visible_in_the_console(
    live_console: str,
    headers_for: Callable[[Role], dict[str, str]],
    token_for: Callable[[Role], str],
    scan: ScanFn,
) -> None:
    _create(live_console, headers_for(Role.SECURITY_ANALYST), "/policies", _policy("enforce"))
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_REF": "refs/heads/feature/gate",
        "GITHUB_REF_NAME": "feature/gate",
        "GITHUB_REF_TYPE": "branch",
    }
    run = scan(*_gate_args(live_console, token_for(Role.CI)), env=github)
    assert run.code == ExitCode.OK, run.err
    assert "registered with the console" in run.err
    digest = json.loads(run.out)["image"]["manifest_digest"]
    auditor = headers_for(Role.AUDITOR)
    with _api(live_console, auditor) as api:
        listed = api.get("/images", params={"repository": "team/app"}).json()
        events = api.get("/events", params={"category": "ci"}).json()["items"]
    assert [(i["digest"], i["registry"]) for i in listed] == [(digest, "registry.example.com:5000")]
    # The registered status is the console's own evaluation: the policy enforces.
    assert listed[0]["status"] == "disallowed"
    assert listed[0]["tags"] == [IMAGE_NAME]
    assert len(events) == 1
    event = events[0]
    assert event["image_digest"] == digest
    assert event["level"] == "detect"  # failed, let through: the pipeline audits
    assert event["actor"] == "token:test-ci"
    data = event["data"]
    assert {k: data[k] for k in ("system", "job_url", "commit", "branch", "pipeline")} == {
        "system": "github-actions",
        "job_url": "https://github.com/acme/app/actions/runs/4242",
        "commit": github["GITHUB_SHA"],
        "branch": "feature/gate",
        "pipeline": "4242",
    }
    assert (data["verdict"], data["enforce"]) == ("disallowed", False)
    gate = [p for p in data["policies"] if p["policy"] == "ci-gate"]
    assert gate == [
        {
            "policy": "ci-gate",
            "policy_mode": "enforce",
            "point_mode": "audit",
            "effective_mode": "audit",
            "action": "detect",
            "failed_controls": ["severity"],
        }
    ]


def test_no_register_leaves_the_inventory_alone(
    live_console: str,
    headers_for: Callable[[Role], dict[str, str]],
    token_for: Callable[[Role], str],
    scan: ScanFn,
) -> None:
    run = scan(*_gate_args(live_console, token_for(Role.CI), "--no-register"))
    assert run.code == ExitCode.OK, run.err
    with _api(live_console, headers_for(Role.AUDITOR)) as api:
        assert api.get("/images").json() == []
        events = api.get("/events", params={"category": "ci"}).json()["items"]
    assert len(events) == 1  # the CI scan is still an audit event
    assert events[0]["level"] == "info"


@pytest.mark.parametrize(
    ("token", "says"),
    [
        (lambda token_for: "tg_not-a-real-token", "the token was refused"),
        (lambda token_for: token_for(Role.SCANNER), "the token's role may not"),
        (lambda token_for: token_for(Role.AUDITOR), "the token's role may not"),
    ],
    ids=["bad-token-401", "scanner-role-403-on-policies", "auditor-role-403-on-register"],
)
def test_refused_token_or_role_is_a_clear_error(
    live_console: str,
    token_for: Callable[[Role], str],
    scan: ScanFn,
    token: Callable[[Callable[[Role], str]], str],
    says: str,
) -> None:
    run = scan(*_gate_args(live_console, token(token_for)))
    assert run.code == ExitCode.AUTH_ERROR, run.err
    assert says in run.err
