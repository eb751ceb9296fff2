"""The story of issue 4, through the API on both databases: a vulnerable image under an audit
policy is approved with its failures listed; enforce disallows it (event); an acknowledgement
approves it (event); its expiry disallows it again (event)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from inventory_data import CRITICAL, digest, scan_document

from tidegate.core.roles import Role

Headers = Callable[[Role], dict[str, str]]


def _events(client: TestClient, headers: Headers, **params: Any) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/events", params=params, headers=headers(Role.AUDITOR))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def _image(client: TestClient, headers: Headers) -> dict[str, Any]:
    answer = client.get(f"/api/v1/images/{digest(1)}", headers=headers(Role.AUDITOR))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _status_events(client: TestClient, headers: Headers) -> list[dict[str, Any]]:
    found = _events(client, headers, category="image")
    return [e for e in found if e["action"] == "image.status_changed"]


def test_audit_enforce_acknowledge_expire(
    client: TestClient, headers_for: Headers, clock: Any
) -> None:
    analyst = headers_for(Role.SECURITY_ANALYST)
    policy = {
        "name": "no-critical",
        "mode": "audit",
        "controls": {"severity": {"max_severity": "high", "only_fixable": True}},
    }
    created = client.post("/api/v1/policies", json=policy, headers=analyst)
    assert created.status_code == 201, created.text

    registered = client.post(
        "/api/v1/images", json={"scan": scan_document(1)}, headers=headers_for(Role.CI)
    )
    assert registered.status_code == 201, registered.text
    image = _image(client, headers_for)
    assert image["status"] == "approved"
    failing = [r for r in image["verdict"]["results"] if not r["passed"]]
    assert {r["policy_name"] for r in failing} == {"default", "no-critical"}
    assert all(r["mode"] == "audit" for r in failing)
    assert any(CRITICAL in f for r in failing for x in r["failures"] for f in x["findings"])

    # Enforce: disallowed, and the event names the policy, the control and the CVE.
    changed = client.patch(
        "/api/v1/policies/no-critical", json={"mode": "enforce"}, headers=analyst
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    image = _image(client, headers_for)
    assert image["status"] == "disallowed"
    assert "no-critical" in image["status_reason"]
    [event] = _status_events(client, headers_for)
    assert event["level"] == "warning"
    assert "approved -> disallowed" in event["message"]
    assert "no-critical" in event["message"]
    assert "severity" in event["message"]
    assert CRITICAL in event["message"]

    # An acknowledgement for a week: approved again, with the finding set aside.
    clock.advance(timedelta(hours=1))
    ack = {
        "vulnerability": CRITICAL,
        "scope": "repository",
        "scope_value": "registry.example.com/team-a/web",
        "package_name": "openssl",
        "justification": "not reachable: the service never parses untrusted X.509",
        "ticket": "SEC-42",
        "expires": (clock() + timedelta(days=7)).isoformat(),
    }
    made = client.post("/api/v1/acknowledgements", json=ack, headers=analyst)
    assert made.status_code == 201, made.text
    assert made.json()["requester"] == "token:test-security-analyst"
    image = _image(client, headers_for)
    assert image["status"] == "approved"
    acknowledged = [a for r in image["verdict"]["results"] for a in r["acknowledged"]]
    assert any(a["ack_id"] == made.json()["id"] for a in acknowledged)
    events = _status_events(client, headers_for)
    assert len(events) == 2
    assert "disallowed -> approved" in events[0]["message"]
    ack_events = _events(client, headers_for, category="acknowledgement")
    assert [e["action"] for e in ack_events] == ["acknowledgement.created"]

    # Past its expiry: disallowed again, an expiry event and a status event.
    clock.advance(timedelta(days=7, seconds=1))
    image = _image(client, headers_for)
    assert image["status"] == "disallowed"
    events = _status_events(client, headers_for)
    assert len(events) == 3
    assert "approved -> disallowed" in events[0]["message"]
    ack_events = _events(client, headers_for, category="acknowledgement")
    assert ack_events[0]["action"] == "acknowledgement.expired"
    listed = client.get("/api/v1/acknowledgements", params={"state": "expired"}, headers=analyst)
    assert [a["id"] for a in listed.json()] == [made.json()["id"]]
    # Expiry is recorded once, however often it is looked at.
    _image(client, headers_for)
    assert len(_events(client, headers_for, category="acknowledgement")) == 2
