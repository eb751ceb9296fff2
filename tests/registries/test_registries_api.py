"""The registries API on SQLite and PostgreSQL: CRUD with audit events and roles, credentials
sealed at rest with the operator's key (refused without one, a clear error with another), and
"test connection" naming what is wrong against real registries (bad host, refused, TLS, 401 with
its scheme, not a registry)."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from helpers import images
from registries.conftest import KEY
from tidegate.console.app import create_app
from tidegate.console.settings import Settings
from tidegate.core.roles import Role
from tidegate.store.db import Database
from tidegate.store.event_tables import EventRow
from tidegate.store.registries import ManagedRegistryRow

Headers = Callable[[Role], dict[str, str]]
BASIC = {"username": "tidegate", "password": "s3cret-pass"}


def _create(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/api/v1/registries", json={"name": "r", **body}, headers=headers)


def test_crud_roles_and_audit(client: TestClient, headers_for: Headers, database: Database) -> None:
    admin, auditor = headers_for(Role.ADMINISTRATOR), headers_for(Role.AUDITOR)
    r = _create(client, admin, url="https://registry.example.com/", credentials=BASIC,
                schedule="0 3 * * *", scoping={"include": ["team/*"]})  # fmt: skip
    assert r.status_code == 201, r.text
    created = r.json()
    assert len(created["webhook_secret"]) >= 32
    assert created["host"] == "registry.example.com"
    assert created["auth"] == "basic"
    assert created["next_run"] == "2026-03-02T03:00:00Z"
    shown = client.get("/api/v1/registries/r", headers=auditor)
    assert shown.status_code == 200
    assert "webhook_secret" not in shown.json()
    assert BASIC["password"] not in shown.text
    with database.session() as s:
        row = s.scalars(select(ManagedRegistryRow)).one()
        assert row.credentials is not None
        assert BASIC["password"] not in row.credentials
        assert created["webhook_secret"] not in row.webhook_secret_hash
    assert _create(client, admin, url="https://x.example").status_code == 409
    assert _create(client, auditor, url="https://x.example").status_code == 403
    assert client.get("/api/v1/registries", headers=headers_for(Role.CI)).status_code == 403

    patch = {"retention": {"keep_last": 3}, "credentials": None, "schedule": None}
    r = client.patch("/api/v1/registries/r", json=patch, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["retention"]["keep_last"], r.json()["auth"], r.json()["next_run"]) == (
        3, "none", None,
    )  # fmt: skip
    rotated = client.post("/api/v1/registries/r/webhook-secret", headers=admin).json()
    assert rotated["webhook_secret"] != created["webhook_secret"]
    assert client.delete("/api/v1/registries/r", headers=admin).status_code == 204
    assert client.get("/api/v1/registries/r", headers=admin).status_code == 404
    with database.session() as s:
        actions = [e.action for e in s.scalars(select(EventRow).order_by(EventRow.id))]
        texts = " ".join(json.dumps(e.data) + e.message for e in s.scalars(select(EventRow)))
    assert [a for a in actions if a.startswith("registry.")] == [
        "registry.created", "registry.updated", "registry.webhook_secret_rotated",
        "registry.deleted",
    ]  # fmt: skip
    assert BASIC["password"] not in texts
    assert created["webhook_secret"] not in texts


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://x"}, "url"),
        ({"url": "https://x.example/v2/"}, "no path"),
        ({"url": "https://x.example", "schedule": "every day"}, "schedule"),
        (
            {"url": "https://x.example", "retention": {"keep_last": 2, "keep_tags": ["a"]}},
            "not both",
        ),
        ({"url": "https://x.example", "credentials": {"password": "p"}}, "username"),
        ({"url": "https://x.example", "scoping": {"max_age_days": 0}}, "max_age_days"),
        ({"url": "https://x.example", "bogus": 1}, "bogus"),
        ({"name": "Bad Name", "url": "https://x.example"}, "name"),
    ],
)
def test_bad_bodies(
    client: TestClient, headers_for: Headers, body: dict[str, Any], field: str
) -> None:
    r = _create(client, headers_for(Role.ADMINISTRATOR), **body)
    assert r.status_code in (400, 422), r.text
    assert field in r.text


def _app(settings: Settings, key: str | None) -> FastAPI:
    secret = SecretStr(key) if key else None
    return create_app(settings.model_copy(update={"encryption_key": secret}))


def test_credentials_need_the_operators_key(
    settings: Settings, headers_for: Headers, auth_registry: images.Registry
) -> None:
    admin = headers_for(Role.ADMINISTRATOR)
    url = f"http://{auth_registry.host}"
    with TestClient(_app(settings, None)) as keyless:
        r = _create(keyless, admin, url=url, credentials=BASIC)
        assert r.status_code == 503  # the operator's configuration, not the caller's input
        assert "TIDEGATE_ENCRYPTION_KEY" in r.json()["error"]["message"]
        assert _create(keyless, admin, url=url).status_code == 201  # anonymous needs no key
        keyless.delete("/api/v1/registries/r", headers=admin)
    with TestClient(_app(settings, KEY)) as keyed:
        assert _create(keyed, admin, url=url, credentials=BASIC).status_code == 201
        assert keyed.post("/api/v1/registries/r/test", headers=admin).json()["ok"]
    with TestClient(_app(settings, "a-different-operator-key")) as other:
        r = other.post("/api/v1/registries/r/test", headers=admin)
        assert r.status_code == 503
        assert "cannot be decrypted with the configured encryption key" in r.text
        run = other.post("/api/v1/registries/r/pull", headers=admin).json()
        assert run["state"] == "failed"
        assert "cannot be decrypted" in run["errors"][0]


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    missing = images.missing_tools("docker-registry", "openssl")
    if missing:
        pytest.skip(f"system tools missing: {', '.join(missing)}")
    work = tmp_path_factory.mktemp("tls-registry")
    cert, key = images.make_tls_cert(work)
    proc, registry = images.start_registry(work / "reg", tls=(cert, key))
    try:
        yield registry.host, cert.read_text()
    finally:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def test_connection_reports(
    client: TestClient, headers_for: Headers, auth_registry: images.Registry,
    tls_registry: tuple[str, str], serve: Callable[[FastAPI], str], app: FastAPI,
) -> None:  # fmt: skip
    admin = headers_for(Role.ADMINISTRATOR)
    tls_host, ca_pem = tls_registry
    not_registry = serve(app)  # the console itself: GET /v2/ is a 404
    cases: list[tuple[dict[str, Any], str | None, str | None, str]] = [
        ({"url": "http://no-such-host.invalid:5000"}, "dns", None, "does not resolve"),
        ({"url": f"http://127.0.0.1:{images.free_port()}"}, "refused", None, "refused"),
        ({"url": f"https://{tls_host}"}, "tls", None, "CA certificate"),
        ({"url": f"https://{tls_host}", "ca_pem": ca_pem}, None, None, "registry/2.0"),
        ({"url": f"https://{tls_host}", "insecure": True}, None, None, "anonymously"),
        ({"url": f"http://{auth_registry.host}"}, "auth", "basic", "asks for basic"),
        ({"url": f"http://{auth_registry.host}", "credentials": {**BASIC, "password": "no"}},
         "auth", "basic", "credentials refused"),
        ({"url": f"http://{auth_registry.host}", "credentials": BASIC}, None, "basic",
         "with basic authentication"),
        ({"url": not_registry}, "not_registry", None, "not an OCI distribution registry"),
    ]  # fmt: skip
    for i, (body, problem, scheme, text) in enumerate(cases):
        name = f"case{i}"
        created = client.post("/api/v1/registries", json={"name": name, **body}, headers=admin)
        assert created.status_code == 201, created.text
        report = client.post(f"/api/v1/registries/{name}/test", headers=admin).json()
        assert (report["problem"], report["auth_scheme"]) == (problem, scheme), (body, report)
        assert report["ok"] is (problem is None)
        assert text in report["message"], report


def test_a_reference_on_a_managed_registry_is_pulled_with_its_settings(
    client: TestClient, headers_for: Headers
) -> None:
    admin = headers_for(Role.ADMINISTRATOR)
    # Loopback ports nothing listens on: the embedded worker's pulls fail at once, offline.
    assert _create(client, admin, url="http://127.0.0.1:9").status_code == 201
    for reference in ("127.0.0.1:9/team/app:1", "127.0.0.2:9/team/app:1"):
        answer = client.post("/api/v1/images", json={"reference": reference}, headers=admin)
        assert answer.status_code == 202, answer.text
    jobs = client.get("/api/v1/scan-jobs", headers=admin).json()["jobs"]
    by_reference = {j["reference"]: j["registry_name"] for j in jobs}
    assert by_reference == {
        "127.0.0.1:9/team/app:1": "r",
        "127.0.0.2:9/team/app:1": None,
    }
