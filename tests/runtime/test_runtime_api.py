"""The runtime API of the console on both databases: runtime policies and services (roles,
401/403, 422 naming the field, the default policy out of the box), enforcer groups (token shown
once, mode switch as an audit event), and the enforcer-facing API (register, heartbeat, bundle
with ETag/304, idempotent event batches), enforcers listed with health and bundle version."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console.inventory_data import scan_document
from helpers.clock import FakeClock
from tidegate.core.bundle import bundle_from_json
from tidegate.core.policy import Mode
from tidegate.core.roles import Role
from tidegate.core.runtime import ImageStateKind

Headers = Callable[[Role], dict[str, str]]
API = "/api/v1"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _group(client: TestClient, headers: Headers, name: str = "prod", **settings: Any) -> str:
    answer = client.post(
        f"{API}/enforcer-groups",
        json={"name": name, **settings},
        headers=headers(Role.SECURITY_ANALYST),
    )
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


def _events(client: TestClient, headers: Headers, **query: str) -> list[dict[str, Any]]:
    answer = client.get(f"{API}/events", params=query, headers=headers(Role.AUDITOR))
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_the_default_runtime_policy_exists_out_of_the_box(
    client: TestClient, headers_for: Headers
) -> None:
    answer = client.get(f"{API}/runtime-policies", headers=headers_for(Role.AUDITOR))
    assert answer.status_code == 200
    (default,) = answer.json()
    assert default["is_default"] is True
    assert default["mode"] == "audit"
    assert default["controls"]["drift_prevention"] is True
    assert "/var/run/docker.sock" in default["controls"]["volume_blacklist"]
    assert default["scope"]["namespaces"] == []
    assert (
        client.delete(
            f"{API}/runtime-policies/default", headers=headers_for(Role.ADMINISTRATOR)
        ).status_code
        == 409
    )
    narrowed = client.patch(
        f"{API}/runtime-policies/default",
        json={"scope": {"namespaces": ["x"]}},
        headers=headers_for(Role.ADMINISTRATOR),
    )
    assert narrowed.status_code == 400
    assert "scope" in narrowed.json()["error"]["message"]
    to_enforce = client.patch(
        f"{API}/runtime-policies/default",
        json={"mode": "enforce"},
        headers=headers_for(Role.ADMINISTRATOR),
    )
    assert to_enforce.status_code == 200
    assert to_enforce.json()["version"] == 2


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        (None, 401, 401),
        (Role.ADMINISTRATOR, 200, 201),
        (Role.SECURITY_ANALYST, 200, 201),
        (Role.AUDITOR, 200, 403),
        (Role.CI, 200, 403),
        (Role.SCANNER, 403, 403),
        (Role.ENFORCER, 403, 403),
    ],
)
def test_roles(
    client: TestClient, headers_for: Headers, role: Role | None, read: int, write: int
) -> None:
    headers = headers_for(role) if role is not None else {}
    body = {"name": "p", "controls": {"block_root": True}}
    assert client.get(f"{API}/runtime-policies", headers=headers).status_code == read
    answer = client.post(f"{API}/runtime-policies", json=body, headers=headers)
    assert answer.status_code == write
    if write == 401:
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    group = client.post(f"{API}/enforcer-groups", json={"name": "g"}, headers=headers)
    assert group.status_code == write


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (
            {"name": "p", "controls": {"block_everything": True}},
            ["body", "controls", "block_everything"],
        ),
        (
            {"name": "p", "controls": {"volume_blacklist": ["/etc", "relative"]}},
            ["body", "controls", "volume_blacklist", 1],
        ),
        (
            {"name": "p", "controls": {"blocked_capabilities": ["NET ADMIN"]}},
            ["body", "controls", "blocked_capabilities", 0],
        ),
        (
            {"name": "p", "controls": {"block_root": "sometimes"}},
            ["body", "controls", "block_root"],
        ),
        ({"name": "p", "mode": "maybe"}, ["body", "mode"]),
        ({"name": "p", "scope": {"namespace": ["x"]}}, ["body", "scope", "namespace"]),
        (
            {"name": "p", "scope": {"container_labels": [{"value": "x"}]}},
            ["body", "scope", "container_labels", 0, "key"],
        ),
        ({"name": "p", "enforce_after": "2026-05-01T00:00:00"}, ["body", "enforce_after"]),
        ({"controls": {}}, ["body", "name"]),
    ],
)
def test_bad_policies_are_422_naming_the_field(
    client: TestClient, headers_for: Headers, body: dict[str, Any], loc: list[Any]
) -> None:
    answer = client.post(
        f"{API}/runtime-policies", json=body, headers=headers_for(Role.ADMINISTRATOR)
    )
    assert answer.status_code == 422
    assert loc in [error["loc"] for error in answer.json()["detail"]]


def test_runtime_policy_crud_with_versions(
    client: TestClient, headers_for: Headers, clock: FakeClock
) -> None:
    admin = headers_for(Role.ADMINISTRATOR)
    body = {
        "name": "shop strict",
        "mode": "enforce",
        "scope": {"namespaces": ["shop"], "services": ["payments"]},
        "controls": {
            "block_root": True,
            "blocked_capabilities": ["cap_net_admin"],
            "seccomp_profile": True,
        },
    }
    created = client.post(f"{API}/runtime-policies", json=body, headers=admin)
    assert created.status_code == 201, created.text
    policy = created.json()
    assert policy["controls"]["blocked_capabilities"] == ["NET_ADMIN"]
    assert policy["engine_level_controls"] == ["seccomp_profile"]
    assert client.post(f"{API}/runtime-policies", json=body, headers=admin).status_code == 409
    assert (
        client.get(f"{API}/runtime-policies/shop strict", headers=admin).json()["id"]
        == policy["id"]
    )
    same = client.put(f"{API}/runtime-policies/{policy['id']}", json=body, headers=admin)
    assert same.json()["version"] == 1  # the same document is no change
    clock.advance(timedelta(minutes=1))
    patched = client.patch(
        f"{API}/runtime-policies/{policy['id']}", json={"mode": "audit"}, headers=admin
    )
    assert patched.json()["version"] == 2
    assert patched.json()["scope"]["namespaces"] == ["shop"]
    bad_patch = client.patch(
        f"{API}/runtime-policies/{policy['id']}",
        json={"controls": {"volume_blacklist": ["x"]}},
        headers=admin,
    )
    assert bad_patch.status_code == 422
    versions = client.get(f"{API}/runtime-policies/{policy['id']}/versions", headers=admin).json()
    assert [(v["version"], v["change"], v["document"]["mode"]) for v in versions] == [
        (1, "created", "enforce"),
        (2, "updated", "audit"),
    ]
    assert client.delete(f"{API}/runtime-policies/{policy['id']}", headers=admin).status_code == 204
    assert client.get(f"{API}/runtime-policies/{policy['id']}", headers=admin).status_code == 404
    actions = [e["action"] for e in _events(client, headers_for, category="policy")]
    assert actions[:3] == [
        "runtime_policy.deleted",
        "runtime_policy.updated",
        "runtime_policy.created",
    ]


def test_services(client: TestClient, headers_for: Headers) -> None:
    admin = headers_for(Role.ADMINISTRATOR)
    body = {
        "priority": 10,
        "rules": [{"labels": [{"key": "app", "value": "pay*"}]}, {"namespaces": ["payments"]}],
    }
    assert client.put(f"{API}/services/payments", json=body, headers=admin).status_code == 201
    assert client.put(f"{API}/services/payments", json=body, headers=admin).status_code == 200
    empty_rule = client.put(f"{API}/services/x", json={"rules": [{}]}, headers=admin)
    assert empty_rule.status_code == 422
    assert ["body", "rules", 0] in [e["loc"] for e in empty_rule.json()["detail"]]
    listed = client.get(f"{API}/services", headers=headers_for(Role.AUDITOR)).json()
    assert [(s["name"], s["priority"]) for s in listed] == [("payments", 10)]
    assert (
        client.put(f"{API}/services/y", json=body, headers=headers_for(Role.AUDITOR)).status_code
        == 403
    )
    assert client.delete(f"{API}/services/payments", headers=admin).status_code == 204
    assert client.get(f"{API}/services/payments", headers=admin).status_code == 404


def test_group_token_is_shown_once_and_mode_switch_is_an_audit_event(
    client: TestClient, headers_for: Headers
) -> None:
    token = _group(client, headers_for)
    assert token.startswith("tge_")
    shown = client.get(f"{API}/enforcer-groups/prod", headers=headers_for(Role.AUDITOR)).json()
    assert "token" not in shown
    assert shown["mode"] == "audit"  # new groups start in audit
    assert token not in str(
        client.get(f"{API}/enforcer-groups", headers=headers_for(Role.AUDITOR)).json()
    )
    assert (
        client.post(
            f"{API}/enforcer-groups", json={"name": "prod"}, headers=headers_for(Role.ADMINISTRATOR)
        ).status_code
        == 409
    )
    bad = client.post(
        f"{API}/enforcer-groups",
        json={"name": "Prod Group!"},
        headers=headers_for(Role.ADMINISTRATOR),
    )
    assert bad.status_code == 422
    assert ["body", "name"] in [e["loc"] for e in bad.json()["detail"]]
    switched = client.patch(
        f"{API}/enforcer-groups/prod",
        json={"mode": "enforce"},
        headers=headers_for(Role.SECURITY_ANALYST),
    )
    assert switched.json()["mode"] == "enforce"
    (event,) = [
        e
        for e in _events(client, headers_for, category="runtime")
        if e["action"] == "enforcer_group.mode_changed"
    ]
    assert event["data"] == {"enforcer_group": "prod", "from": "audit", "to": "enforce"}
    assert event["actor"] == "token:test-security-analyst"
    rotated = client.post(
        f"{API}/enforcer-groups/prod/token", headers=headers_for(Role.ADMINISTRATOR)
    ).json()["token"]
    hello = {"hostname": "node-1", "version": "0.1"}
    assert (
        client.post(f"{API}/enforcer/register", json=hello, headers=_bearer(token)).status_code
        == 401
    )
    assert (
        client.post(f"{API}/enforcer/register", json=hello, headers=_bearer(rotated)).status_code
        == 200
    )


def test_enforcer_api_needs_a_group_token(client: TestClient, headers_for: Headers) -> None:
    hello = {"hostname": "node-1", "version": "0.1"}
    for headers in ({}, headers_for(Role.ENFORCER), _bearer("tge_forged")):
        answer = client.post(f"{API}/enforcer/register", json=hello, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert client.get(f"{API}/enforcer/bundle", headers=headers).status_code == 401


def _register_images(client: TestClient, headers: Headers) -> None:
    for n, repo in ((1, "team-a/web"), (2, "team-a/api")):
        answer = client.post(
            f"{API}/images",
            json={"scan": scan_document(n, repository=repo)},
            headers=headers(Role.CI),
        )
        assert answer.status_code == 201, answer.text


def test_register_heartbeat_bundle_etag(
    client: TestClient, headers_for: Headers, clock: FakeClock
) -> None:
    _register_images(client, headers_for)
    token = _group(client, headers_for, fail_mode="closed")
    group = _bearer(token)
    hello = {"hostname": "node-1", "version": "0.1.0"}
    registered = client.post(f"{API}/enforcer/register", json=hello, headers=group).json()
    again = client.post(f"{API}/enforcer/register", json=hello, headers=group).json()
    assert registered["enforcer_id"] == again["enforcer_id"]
    assert registered["group"] == {
        "name": "prod",
        "mode": "audit",
        "admission_enabled": True,
        "fail_mode": "closed",
        "audit_all": False,
    }

    first = client.get(f"{API}/enforcer/bundle", headers=group)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    bundle = bundle_from_json(first.content)
    assert etag == f'"{bundle.version}"'
    assert bundle.group.mode is Mode.AUDIT
    assert [p.name for p in bundle.policies] == ["Default runtime policy"]
    web = bundle.image_state(image_ref="registry.example.com/team-a/web:1.0")
    assert web.kind is ImageStateKind.REGISTERED_APPROVED
    assert bundle.image_state(image_id="sha256:" + "c" * 56 + "00000002").registered
    assert not bundle.image_state(image_ref="registry.example.com/team-a/db:1.0").registered

    unchanged = client.get(f"{API}/enforcer/bundle", headers={**group, "If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.headers["ETag"] == etag

    beat = client.post(
        f"{API}/enforcer/heartbeat",
        json={
            "enforcer_id": registered["enforcer_id"],
            "bundle_version": bundle.version,
            "status": {"spool": 0},
        },
        headers=group,
    )
    assert beat.status_code == 200
    assert beat.json()["bundle_version"] == bundle.version

    # A mode switch reaches the enforcers at their next poll: a new version at once.
    client.patch(
        f"{API}/enforcer-groups/prod",
        json={"mode": "enforce"},
        headers=headers_for(Role.ADMINISTRATOR),
    )
    switched = client.get(f"{API}/enforcer/bundle", headers={**group, "If-None-Match": etag})
    assert switched.status_code == 200
    assert bundle_from_json(switched.content).group.mode is Mode.ENFORCE

    # An assurance policy that disallows the images, and a scoped runtime policy: within seconds.
    strict = {
        "name": "strict",
        "mode": "enforce",
        "controls": {"severity": {"max_severity": "high"}},
    }
    assert (
        client.post(
            f"{API}/policies", json=strict, headers=headers_for(Role.ADMINISTRATOR)
        ).status_code
        == 201
    )
    layer = {
        "name": "block disallowed",
        "mode": "enforce",
        "scope": {"enforcer_groups": ["prod"]},
        "controls": {"block_disallowed": True},
    }
    other = {
        "name": "other group",
        "scope": {"enforcer_groups": ["staging"]},
        "controls": {"block_root": True},
    }
    for body in (layer, other):
        assert (
            client.post(
                f"{API}/runtime-policies", json=body, headers=headers_for(Role.ADMINISTRATOR)
            ).status_code
            == 201
        )
    # No waiting: the policy and image changes recorded events, so the next poll rebuilds.
    latest = bundle_from_json(client.get(f"{API}/enforcer/bundle", headers=group).content)
    assert [p.name for p in latest.policies] == ["Default runtime policy", "block disallowed"]
    assert (
        latest.image_state(image_ref="registry.example.com/team-a/web:1.0").kind
        is ImageStateKind.REGISTERED_DISALLOWED
    )


def _event(key: str, **changes: Any) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "ts": "2026-03-01T12:00:00+00:00",
        "level": "detect",
        "action": "container.start",
        "message": "allowed (audit): policy 'Default runtime policy', volume_blacklist",
        "container_id": "c0ffee",
        "container_name": "web",
        "image_ref": "registry.example.com/team-a/web:1.0",
        "image_id": "sha256:" + "c" * 64,
        "host": "node-1",
        "policy_id": "default",
        "policy_name": "Default runtime policy",
        "control": "volume_blacklist",
        "policy_mode": "audit",
        "point_mode": "enforce",
        "effective_mode": "audit",
        **changes,
    }


def test_event_batches_are_idempotent(client: TestClient, headers_for: Headers) -> None:
    group = _bearer(_group(client, headers_for))
    enforcer = client.post(
        f"{API}/enforcer/register", json={"hostname": "node-1", "version": "1"}, headers=group
    ).json()
    batch = {
        "enforcer_id": enforcer["enforcer_id"],
        "events": [
            _event("node-1:0001"),
            _event("node-1:0002", level="block", policy_mode="enforce", effective_mode="enforce"),
        ],
    }
    first = client.post(f"{API}/enforcer/events", json=batch, headers=group)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": ["node-1:0001", "node-1:0002"], "duplicates": []}
    second = client.post(f"{API}/enforcer/events", json=batch, headers=group)
    assert second.json() == {"accepted": [], "duplicates": ["node-1:0001", "node-1:0002"]}
    mixed = {"events": [_event("node-1:0002"), _event("node-1:0003"), _event("node-1:0003")]}
    assert client.post(f"{API}/enforcer/events", json=mixed, headers=group).json() == {
        "accepted": ["node-1:0003"],
        "duplicates": ["node-1:0002", "node-1:0003"],
    }
    stored = [
        e
        for e in _events(client, headers_for, category="runtime")
        if e["action"] == "container.start"
    ]
    assert sorted(e["data"]["idempotency_key"] for e in stored) == [
        "node-1:0001",
        "node-1:0002",
        "node-1:0003",
    ]
    block = next(e for e in stored if e["level"] == "block")
    assert block["policy"] == "Default runtime policy"
    assert block["image_digest"] == "sha256:" + "c" * 64
    assert {
        k: block["data"][k]
        for k in (
            "policy_mode",
            "point_mode",
            "effective_mode",
            "enforcer_group",
            "host",
            "control",
        )
    } == {
        "policy_mode": "enforce",
        "point_mode": "enforce",
        "effective_mode": "enforce",
        "enforcer_group": "prod",
        "host": "node-1",
        "control": "volume_blacklist",
    }
    # The same key in another group is another event.
    staging = _bearer(_group(client, headers_for, name="staging"))
    assert client.post(
        f"{API}/enforcer/events", json={"events": [_event("node-1:0001")]}, headers=staging
    ).json()["accepted"] == ["node-1:0001"]


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"effective_mode": "enforce"}, ["body", "events", 0]),  # contradicts audit x enforce
        ({"policy_mode": None}, ["body", "events", 0]),
        ({"level": "panic"}, ["body", "events", 0, "level"]),
        ({"idempotency_key": "k"}, ["body", "events", 0, "idempotency_key"]),
        ({"ts": "2026-03-01T12:00:00"}, ["body", "events", 0]),
        ({"surprise": 1}, ["body", "events", 0, "surprise"]),
    ],
)
def test_bad_events_are_422_naming_the_field(
    client: TestClient, headers_for: Headers, changes: dict[str, Any], loc: list[Any]
) -> None:
    group = _bearer(_group(client, headers_for))
    answer = client.post(
        f"{API}/enforcer/events", json={"events": [_event("node-1:0001", **changes)]}, headers=group
    )
    assert answer.status_code == 422
    assert loc in [e["loc"][: len(loc)] for e in answer.json()["detail"]]


def test_enforcers_listed_with_health_and_bundle_version(
    client: TestClient, headers_for: Headers, clock: FakeClock
) -> None:
    group = _bearer(_group(client, headers_for))
    ids = {
        host: client.post(
            f"{API}/enforcer/register", json={"hostname": host, "version": "1.2"}, headers=group
        ).json()["enforcer_id"]
        for host in ("node-1", "node-2")
    }
    version = bundle_from_json(client.get(f"{API}/enforcer/bundle", headers=group).content).version
    client.post(
        f"{API}/enforcer/heartbeat",
        json={"enforcer_id": ids["node-1"], "bundle_version": version},
        headers=group,
    )
    listed = client.get(f"{API}/enforcers", headers=headers_for(Role.AUDITOR)).json()
    assert [
        (e["hostname"], e["health"], e["bundle_version"], e["bundle_current"]) for e in listed
    ] == [
        ("node-1", "healthy", version, True),
        ("node-2", "healthy", None, None),
    ]
    clock.advance(timedelta(minutes=1))
    client.post(
        f"{API}/enforcer/heartbeat",
        json={"enforcer_id": ids["node-2"], "bundle_version": "sha256:old"},
        headers=group,
    )
    listed = client.get(
        f"{API}/enforcers", params={"group": "prod"}, headers=headers_for(Role.AUDITOR)
    ).json()
    assert [(e["hostname"], e["health"], e["bundle_current"]) for e in listed] == [
        ("node-1", "stale", True),
        ("node-2", "healthy", False),
    ]
    clock.advance(timedelta(minutes=10))
    assert {
        e["health"]
        for e in client.get(f"{API}/enforcers", headers=headers_for(Role.AUDITOR)).json()
    } == {"offline"}
    other = _bearer(_group(client, headers_for, name="staging"))
    stolen = client.post(
        f"{API}/enforcer/heartbeat", json={"enforcer_id": ids["node-1"]}, headers=other
    )
    assert stolen.status_code == 404
    assert (
        client.get(f"{API}/enforcer-groups/prod", headers=headers_for(Role.AUDITOR)).json()[
            "enforcers"
        ]
        == 2
    )


def test_events_as_the_enforcer_agent_writes_them(client: TestClient, headers_for: Headers) -> None:
    """The agent's own event documents (tidegate.enforcer.agent.events_for) are accepted as sent."""
    agent = pytest.importorskip("tidegate.enforcer.agent")
    from datetime import UTC, datetime

    from tidegate.core.bundle import EnforcerGroupInfo, build_bundle, build_image_index
    from tidegate.core.runtime import (
        ContainerRequest,
        ImageState,
        Mount,
        decide,
        default_runtime_policy,
    )

    token = _bearer(_group(client, headers_for))
    enforcer = client.post(
        f"{API}/enforcer/register", json={"hostname": "node-1", "version": "1"}, headers=token
    ).json()
    again = client.post(
        f"{API}/enforcer/register",
        json={"hostname": "node-1", "version": "1", "enforcer_id": enforcer["enforcer_id"]},
        headers=token,
    ).json()
    assert again["enforcer_id"] == enforcer["enforcer_id"]
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    bundle = build_bundle(
        group=EnforcerGroupInfo("prod", Mode.ENFORCE),
        policies=[default_runtime_policy()],
        services=[],
        images=build_image_index([]),
        now=now,
    )
    request = ContainerRequest(
        container_id="c1",
        name="web",
        image_ref="nginx:1.27",
        host="node-1",
        enforcer_group="prod",
        mounts=(Mount("/var/run/docker.sock", "/sock"),),
        user_uid=0,
    )
    decision = decide(
        request,
        bundle.policies,
        ImageState(ImageStateKind.UNREGISTERED),
        group_mode=Mode.ENFORCE,
        now=now,
    )
    documents = agent.events_for(decision, request, source="hook", bundle=bundle, now=now)
    batch = [
        {**d, "idempotency_key": f"5f0c3a1e-0000-4000-8000-00000000000{i}"}
        for i, d in enumerate(documents)
    ]
    answer = client.post(f"{API}/enforcer/events", json={"events": batch}, headers=token)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["accepted"]) == len(documents) == 1
    (event,) = [
        e for e in _events(client, headers_for, category="runtime") if e["level"] == "detect"
    ]
    assert event["policy"] == "Default runtime policy"
    assert {
        k: event["data"][k]
        for k in (
            "policy_mode",
            "enforcer_mode",
            "effective_mode",
            "control",
            "source",
            "image_ref",
        )
    } == {
        "policy_mode": "audit",
        "enforcer_mode": "enforce",
        "effective_mode": "audit",
        "control": "volume_blacklist",
        "source": "hook",
        "image_ref": "nginx:1.27",
    }
    beat = client.post(
        f"{API}/enforcer/heartbeat",
        json={
            "enforcer_id": enforcer["enforcer_id"],
            "bundle_version": None,
            "status": "healthy",
            "spooled": 3,
        },
        headers=token,
    )
    assert beat.status_code == 200, beat.text
    listed = client.get(f"{API}/enforcers", headers=headers_for(Role.AUDITOR)).json()
    assert listed[0]["status"] == {"status": "healthy", "spooled": 3}
