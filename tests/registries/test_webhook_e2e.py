"""End to end with real parts: a console served by uvicorn with an embedded scan worker, real
`docker-registry` instances whose notifications point at the console's webhook (one anonymous,
one with htpasswd auth), real `skopeo copy` pushes. push -> webhook -> job -> pull and scan ->
verdict, with the time from push to verdict printed; a registry configured with the wrong secret
is refused (401), logged, and registers nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from helpers import images
from registries.conftest import KEY
from tidegate.console.app import create_app
from tidegate.console.settings import Settings
from tidegate.core.roles import Role
from tidegate.store.db import Database

SECRET = "e2e-webhook-secret-0123456789"
FINAL = {"approved", "disallowed", "failed"}

pytestmark = pytest.mark.system


@pytest.fixture
def console(
    database: Database, tmp_path: Path, serve: Callable[[FastAPI], str],
    monkeypatch: pytest.MonkeyPatch,
) -> str:  # fmt: skip
    # The embedded worker opens the registry's credentials with the operator's key.
    monkeypatch.setenv("TIDEGATE_ENCRYPTION_KEY", KEY)
    settings = Settings(
        environment="development", data_dir=tmp_path / "console", database_url=database.url,
        encryption_key=KEY, embedded_workers=1, scheduler=False,
    )  # fmt: skip
    return serve(create_app(settings, clock=lambda: datetime.now(UTC)))


def _wait_for_verdict(base: str, headers: dict[str, str], digest: str, limit: float) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        r = httpx.get(f"{base}/api/v1/images/{digest}", headers=headers)
        if r.status_code == 200 and r.json()["status"] in FINAL:
            return dict(r.json())
        time.sleep(0.05)
    pytest.fail(f"no verdict for {digest} within {limit} s")


@pytest.mark.parametrize("auth", [False, True], ids=["anonymous", "htpasswd"])
def test_push_to_verdict(
    console: str, start_registry: Callable[..., images.Registry], busybox_layout: Path,
    headers_for: Callable[[Role], dict[str, str]], auth: bool,
) -> None:  # fmt: skip
    admin = headers_for(Role.ADMINISTRATOR)
    hook = f"{console}/api/v1/registries/e2e/webhook"
    registry = start_registry(
        notify=(hook, f"Bearer {SECRET}"),
        htpasswd=("tidegate", "s3cret-pass") if auth else None,
    )
    body: dict[str, object] = {"name": "e2e", "url": f"http://{registry.host}",
                               "webhook_secret": SECRET}  # fmt: skip
    if auth:
        body["credentials"] = {"username": "tidegate", "password": "s3cret-pass"}
    r = httpx.post(f"{console}/api/v1/registries", json=body, headers=admin)
    assert r.status_code == 201, r.text
    check = httpx.post(f"{console}/api/v1/registries/e2e/test", headers=admin).json()
    assert check["ok"], check
    assert check["auth_scheme"] == ("basic" if auth else None)

    started = time.monotonic()
    registry.push(f"oci:{busybox_layout}:{images.TAG}", "e2e/app:1")
    digest = images.manifest_digest(registry, "e2e/app:1")
    image = _wait_for_verdict(console, admin, digest, 60)
    elapsed = time.monotonic() - started
    print(f"\n[{'htpasswd' if auth else 'anonymous'}] push -> verdict: {elapsed:.2f} s "
          f"({image['status']}: {image['status_reason']})")  # fmt: skip
    assert image["status"] == "approved", image
    assert image["scan"]["packages"] is not None
    assert f"{registry.host}/e2e/app:1" in image["tags"]

    # The same digest under a second tag: the same image, no second scan.
    registry.push(f"oci:{busybox_layout}:{images.TAG}", "e2e/app:2")
    deadline = time.monotonic() + 30
    while f"{registry.host}/e2e/app:2" not in image["tags"] and time.monotonic() < deadline:
        time.sleep(0.1)
        image = httpx.get(f"{console}/api/v1/images/{digest}", headers=admin).json()
    assert f"{registry.host}/e2e/app:2" in image["tags"]
    jobs = httpx.get(f"{console}/api/v1/scan-jobs", headers=admin).json()
    assert [(j["digest"], j["state"], j["registry_name"]) for j in jobs["jobs"]] == [
        (digest, "done", "e2e")
    ]
    listed = httpx.get(f"{console}/api/v1/images", headers=admin).json()
    assert [i["digest"] for i in listed] == [digest]


def test_wrong_secret_in_registry_config_is_refused(
    console: str, start_registry: Callable[..., images.Registry], busybox_layout: Path,
    headers_for: Callable[[Role], dict[str, str]],
) -> None:  # fmt: skip
    admin = headers_for(Role.ADMINISTRATOR)
    hook = f"{console}/api/v1/registries/e2e/webhook"
    registry = start_registry(notify=(hook, "Bearer not-the-secret"))
    body = {"name": "e2e", "url": f"http://{registry.host}", "webhook_secret": SECRET}
    assert httpx.post(f"{console}/api/v1/registries", json=body, headers=admin).status_code == 201
    registry.push(f"oci:{busybox_layout}:{images.TAG}", "e2e/app:1")
    deadline = time.monotonic() + 30
    refused: list[dict] = []  # type: ignore[type-arg]
    while not refused and time.monotonic() < deadline:
        time.sleep(0.1)
        events = httpx.get(f"{console}/api/v1/events?category=registry", headers=admin).json()
        refused = [e for e in events["items"] if e["action"] == "registry.webhook_refused"]
    assert refused, "the registry's notification was not refused"
    assert refused[0]["data"]["reason"] == "wrong secret"
    assert "not-the-secret" not in str(refused[0])
    assert httpx.get(f"{console}/api/v1/images", headers=admin).json() == []
