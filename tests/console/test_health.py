"""Probes, the OpenAPI document, settings, and the `tidegate console` / `admin` commands."""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tidegate.cli import console_cmd
from tidegate.cli.main import main
from tidegate.console.app import create_app
from tidegate.console.settings import Settings
from tidegate.core.roles import Role


def test_healthz_and_readyz_answer_on_a_migrated_database(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_openapi_document_lists_the_api_under_v1(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/auth/login", "/api/v1/users", "/api/v1/tokens", "/api/v1/events"} <= set(
        doc["paths"]
    )
    assert client.get("/api/v1/docs").status_code == 200


def test_an_unexpected_error_is_a_json_500_without_details(app: FastAPI) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom")
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert "secret internals" not in answer.text


def _unreachable_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        (tmp_path / "a-directory").mkdir()
        return f"sqlite:///{tmp_path / 'a-directory'}"
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/nothing?connect_timeout=2"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_readyz_is_503_when_the_database_is_unreachable(kind: str, tmp_path: Path) -> None:
    settings = Settings(
        environment="development", data_dir=tmp_path, database_url=_unreachable_url(kind, tmp_path)
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"


def test_readyz_is_503_on_a_database_not_migrated(db_url: str, tmp_path: Path) -> None:
    settings = Settings(environment="development", data_dir=tmp_path, database_url=db_url)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "revision none" in ready.json()["reason"]


@pytest.mark.parametrize(
    ("environment", "secret", "accepted"),
    [
        ("development", None, True),
        ("production", None, False),
        ("production", "changethis", False),
        ("production", "a-long-random-secret", True),
    ],
)
def test_settings_refuse_the_default_secret_outside_development(
    environment: str, secret: str | None, accepted: bool, tmp_path: Path
) -> None:
    given: dict[str, object] = {"environment": environment, "data_dir": tmp_path}
    if secret is not None:
        given["secret_key"] = secret
    if accepted:
        Settings(**given)  # type: ignore[arg-type]
    else:
        with pytest.raises(ValueError, match="secret_key: the default secret is refused"):
            Settings(**given)  # type: ignore[arg-type]


def test_settings_from_environment_and_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDEGATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TIDEGATE_ENVIRONMENT", "development")
    monkeypatch.setenv("TIDEGATE_PORT", "9999")
    settings = Settings()
    assert settings.port == 9999
    assert settings.database_url == f"sqlite:///{tmp_path / 'console.sqlite'}"
    assert settings.vulndb_path == tmp_path / "vulndb" / "vulndb.sqlite"
    assert Settings(port=1234).port == 1234  # arguments win over the environment


def _console_args(data_dir: Path) -> argparse.Namespace:
    return argparse.Namespace(data_dir=data_dir, host=None, port=None)


def test_console_command_migrates_makes_admin_once_and_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIDEGATE_SECRET_KEY", raising=False)
    monkeypatch.delenv("TIDEGATE_ADMIN_PASSWORD", raising=False)
    served: list[Settings] = []
    out = io.StringIO()
    console_cmd.run_console(_console_args(tmp_path), out, io.StringIO(), serve=served.append)
    password = re.search(r"created user 'admin' with password (\S+)", out.getvalue())
    assert password is not None
    assert "http://127.0.0.1:8080" in out.getvalue()
    assert served[0].environment == "production"  # safe: a stored random secret, not the default
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    again = io.StringIO()
    console_cmd.run_console(_console_args(tmp_path), again, io.StringIO(), serve=served.append)
    assert "created user" not in again.getvalue()
    assert served[1].secret_key == served[0].secret_key
    with TestClient(create_app(served[1])) as client:
        login = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": password[1]}
        )
    assert login.status_code == 200


def test_admin_create_token_prints_a_working_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIDEGATE_SECRET_KEY", raising=False)
    out, err = io.StringIO(), io.StringIO()
    argv = ["admin", "create-token", "--role", "ci", "--name", "pipeline"]
    assert main([*argv, "--data-dir", str(tmp_path)], out, err) == 0
    token = out.getvalue().strip()
    assert token.startswith("tg_")
    assert "'pipeline'" in err.getvalue()
    settings = Settings(environment="development", data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        events = client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "ci"
    assert me.json()["name"] == "token:pipeline"
    assert events.status_code == 403  # ci may not read the audit log


def test_admin_create_token_refuses_an_unknown_role(tmp_path: Path) -> None:
    err = io.StringIO()
    code = main(["admin", "create-token", "--role", "root", "--data-dir", str(tmp_path)], None, err)
    assert code == 2
    assert "--role" in err.getvalue()


def _wait_for(url: str, proc: subprocess.Popen[str]) -> None:
    for _ in range(100):
        if proc.poll() is not None:
            raise AssertionError(f"console exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@pytest.mark.slow
def test_tidegate_console_process_serves_and_logs_in_the_first_admin(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
    env["TIDEGATE_ADMIN_PASSWORD"] = "first-admin-password"
    command = [sys.executable, "-c", "from tidegate.cli.main import entrypoint; entrypoint()"]
    proc = subprocess.Popen(
        [*command, "console", "--port", str(port), "--data-dir", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/readyz", proc)
        login = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"username": "admin", "password": "first-admin-password"},
        )
        assert login.status_code == 200
        token = login.json()["access_token"]
        me = httpx.get(f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["role"] == Role.ADMINISTRATOR
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    assert f"console: {base}" in output
    assert "created user" not in output  # the password was given, so none is printed
    assert (tmp_path / "console.sqlite").exists()


def test_an_app_served_twice_keeps_its_database_until_the_last_server_stops(app: FastAPI) -> None:
    # A test client and a second server (two lifespans) on one app: the first to stop must not
    # dispose the database under the other's requests and background work.
    state = app.state.console
    with TestClient(app) as first:
        with TestClient(app) as second:
            assert second.get("/readyz").status_code == 200
            database = state.database
        assert state.database is database  # still the same, still open
        assert first.get("/readyz").status_code == 200
    assert state._database is None  # disposed with the last one
