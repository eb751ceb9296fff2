"""Policy as code: `tidegate apply` / `export` against a real console app (over HTTP through the
app's ASGI transport) and straight to a data directory's database."""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from tidegate.cli import apply_cmd
from tidegate.cli.main import main
from tidegate.core.errors import UsageError
from tidegate.core.roles import Role

FILE = """
- kind: Policy
  name: prod-gate
  mode: enforce
  scope: {registries: ["registry.example.com"], repositories: ["team-a/*"]}
  controls:
    severity: {max_severity: high, only_fixable: true}
    cve_denylist: [CVE-2021-44228]
    package_denylist:
      - {name: log4j-core, versions: "<2.17.1", type: maven}
    block_root: true
- kind: Acknowledgement
  vulnerability: CVE-2023-5363
  scope: repository
  scope_value: registry.example.com/team-a/web
  package_name: openssl
  justification: not reachable from the network
  ticket: SEC-42
  expires: "2026-06-01T00:00:00+00:00"
"""


def _backend(client: TestClient, token: str) -> apply_cmd.HttpBackend:
    # The TestClient is an httpx.Client bound to the app: the real HTTP backend, in process.
    client.headers["Authorization"] = f"Bearer {token}"
    return apply_cmd.HttpBackend(client)


def _events(client: TestClient, headers: dict[str, str]) -> int:
    return len(client.get("/api/v1/events", params={"limit": 500}, headers=headers).json()["items"])


def test_apply_twice_changes_nothing_and_export_round_trips(
    client: TestClient, headers_for: Callable[[Role], dict[str, str]], token_for: Any
) -> None:
    documents = apply_cmd.load_documents(FILE, "gate.yaml")
    backend = _backend(client, token_for(Role.SECURITY_ANALYST))
    first = apply_cmd.apply_documents(backend, documents)
    assert [o.action for o in first] == ["created", "created"]
    before = _events(client, headers_for(Role.AUDITOR))
    second = apply_cmd.apply_documents(backend, documents)
    assert [o.action for o in second] == ["unchanged", "unchanged"]
    assert _events(client, headers_for(Role.AUDITOR)) == before

    exported = apply_cmd.export_documents(backend, None)
    names = [d.get("name") for d in exported if d["kind"] == "Policy"]
    assert names == ["default", "prod-gate"]
    text = yaml.safe_dump(exported)
    again = apply_cmd.apply_documents(backend, apply_cmd.load_documents(text, "export.yaml"))
    assert {o.action for o in again} == {"unchanged"}
    assert _events(client, headers_for(Role.AUDITOR)) == before

    changed = FILE.replace("ticket: SEC-42", "ticket: SEC-43").replace(
        "mode: enforce", "mode: audit"
    )
    third = apply_cmd.apply_documents(backend, apply_cmd.load_documents(changed, "gate.yaml"))
    assert [o.action for o in third] == ["updated", "updated"]
    policy = client.get("/api/v1/policies/prod-gate", headers=headers_for(Role.AUDITOR)).json()
    assert (policy["mode"], policy["version"]) == ("audit", 2)


def test_apply_needs_write_permission(client: TestClient, token_for: Any) -> None:
    backend = _backend(client, token_for(Role.AUDITOR))
    with pytest.raises(apply_cmd.ConsoleError, match="403"):
        apply_cmd.apply_documents(backend, apply_cmd.load_documents(FILE, "gate.yaml"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- kind: Policy\n  name: x\n  controls: {severity: {max_severity: huge}}",
            "controls.severity.max_severity",
        ),
        (
            "- kind: Policy\n  name: x\n  controls: {no_such_control: true}",
            "controls.no_such_control",
        ),
        (
            "- kind: Policy\n  name: x\n"
            "  controls: {package_denylist: [{name: a, versions: '~>1'}]}",
            "controls.package_denylist.0",
        ),
        ("- kind: Registry\n  name: x", "`kind` must be one of"),
        (
            "- kind: Acknowledgement\n  vulnerability: CVE-1\n  scope: image\n  scope_value: x\n"
            "  justification: y",
            "document 1 (Acknowledgement)",
        ),
        ("- [unclosed", "not valid YAML"),
    ],
)
def test_bad_files_name_the_document_and_field(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_cmd.load_documents(text, "bad.yaml")


def test_cli_data_dir_apply_and_export(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(FILE.replace("2026-06-01", "2099-06-01"))
    data = tmp_path / "data"
    out = io.StringIO()
    assert main(["apply", "-f", str(path), "--data-dir", str(data)], out, io.StringIO()) == 0
    assert "Policy prod-gate: created" in out.getvalue()
    out = io.StringIO()
    assert main(["apply", "-f", str(path), "--data-dir", str(data)], out, io.StringIO()) == 0
    assert out.getvalue().count("unchanged") == 2
    out = io.StringIO()
    assert main(["export", "--data-dir", str(data)], out, io.StringIO()) == 0
    exported = yaml.safe_load(out.getvalue())
    assert [d["kind"] for d in exported] == ["Policy", "Policy", "Acknowledgement"]
    assert exported[2]["requester"] == "apply"


def test_cli_without_a_target_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(FILE)
    err = io.StringIO()
    assert main(["apply", "-f", str(path)], io.StringIO(), err) == 2
    assert "--console URL" in err.getvalue()


def test_http_backend_reports_unreachable_console() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    args = argparse.Namespace(console="http://console.invalid", token="t", data_dir=None)
    with (
        apply_cmd.open_backend(args, transport=httpx.MockTransport(refuse)) as backend,
        pytest.raises(apply_cmd.ConsoleError, match="connection refused"),
    ):
        backend.policies()
