"""`tidegate profile ...` against a real console app (through the test client's transport), and
`tidegate apply -f` / `tidegate export --kind profile` with RuntimeProfile documents on a console
data directory."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from helpers.clock import FakeClock
from tidegate.cli import profile_cmd
from tidegate.cli.gate import policies_from_file
from tidegate.cli.main import build_parser, main
from tidegate.core.errors import UsageError
from tidegate.core.roles import Role

IMAGE = "localhost:5000/shop/api:1.0"


def _bridge(client: TestClient) -> httpx.MockTransport:
    """The CLI's HTTP requests, answered by the app in process through the test client."""

    def handle(request: httpx.Request) -> httpx.Response:
        answer = client.request(
            request.method, str(request.url), headers=request.headers, content=request.content
        )
        # The test client already decoded the body: its encoding headers no longer apply.
        headers = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("content-encoding", "content-length")
        }
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)

    return httpx.MockTransport(handle)


def _cli(client: TestClient, token: str, *argv: str) -> str:
    args = build_parser().parse_args(["profile", *argv])
    out = io.StringIO()
    transport = _bridge(client)
    code = profile_cmd.run(
        args,
        out,
        io.StringIO(),
        env={"TIDEGATE_CONSOLE": "http://testserver", "TIDEGATE_TOKEN": token},
        transport=transport,
    )
    assert code == 0
    return out.getvalue()


def test_profile_commands_from_start_to_enforce(
    client: TestClient,
    token_for: Callable[[Role], str],
    group_token: str,
    clock: FakeClock,
) -> None:
    token = token_for(Role.SECURITY_ANALYST)
    started = _cli(client, token, "start", IMAGE, "--name", "shop-api")
    assert "profiling localhost:5000/shop/api for profile 'shop-api' (replacing it)" in started
    session_id = started.split("session ")[1].split()[0]
    client.post(
        "/api/v1/enforcer/profiling/observations",
        json={
            "observations": [
                {
                    "key": "cli-00001",
                    "session_id": session_id,
                    "container_id": "c1",
                    "observed_at": clock().isoformat(),
                    "kind": "exec",
                    "path": "/usr/bin/python3",
                }
            ]
        },
        headers={"Authorization": f"Bearer {group_token}"},
    ).raise_for_status()
    listed = _cli(client, token, "list")
    assert "profiling now:" in listed
    assert session_id in listed
    stopped = _cli(client, token, "stop", "shop-api")
    assert "profile 'shop-api' v1 applied in audit mode (1 executable(s)" in stopped
    shown = yaml.safe_load(_cli(client, token, "show", "shop-api"))
    assert shown["executables"] == [{"path": "/usr/bin/python3", "sha256": None}]
    exported = yaml.safe_load(_cli(client, token, "export", "shop-api"))
    assert exported == [
        {
            "kind": "RuntimeProfile",
            "name": "shop-api",
            "repository": "localhost:5000/shop/api",
            "mode": "audit",
            "executables": [{"path": "/usr/bin/python3", "sha256": None}],
            "volumes": [],
            "listeners": [],
            "outbound": [],
        }
    ]
    ready = _cli(client, token, "readiness", "shop-api")
    assert "0 DETECT event(s)" in ready
    assert "ready to enforce" in ready
    assert f"learned from session {session_id}" in ready
    assert "is in enforce mode (v2)" in _cli(client, token, "mode", "shop-api", "enforce")
    table = _cli(client, token, "list")
    assert "shop-api  localhost:5000/shop/api  enforce  2" in table
    auto = _cli(client, token, "start", IMAGE, "--name", "shop-api", "--append", "--duration", "2h")
    assert "(appending to it)" in auto
    assert (clock() + timedelta(hours=2)).isoformat()[:16] in auto


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2h", 7200), ("90m", 5400), ("1d12h", 129600), ("45s", 45), ("3600", 3600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert profile_cmd.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2 hours", "h", "0", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError, match="--duration"):
        profile_cmd.parse_duration(text)


def test_profile_commands_need_a_console() -> None:
    err = io.StringIO()
    code = main(["profile", "list"], io.StringIO(), err)
    assert code == 2
    assert "--console URL and --token" in err.getvalue()


PROFILE_YAML = """\
- kind: RuntimeProfile
  name: billing
  repository: registry.example.com/team/billing
  mode: enforce
  executables:
  - path: /usr/local/bin/billing
    sha256: %s
  - path: /bin/sh
  volumes:
  - destination: /var/lib/billing
    source: billing-data
  listeners:
  - protocol: tcp
    port: 8443
  outbound:
  - protocol: tcp
    port: 5432
    address: 10.1.0.0/16
""" % ("ab" * 32)


def test_apply_and_export_runtime_profiles_on_a_data_dir(tmp_path: Path) -> None:
    source = tmp_path / "billing.yaml"
    source.write_text(PROFILE_YAML)
    data = tmp_path / "data"
    out = io.StringIO()
    assert main(["apply", "-f", str(source), "--data-dir", str(data)], out, io.StringIO()) == 0
    assert out.getvalue() == "RuntimeProfile billing: created\n"
    again = io.StringIO()
    assert main(["apply", "-f", str(source), "--data-dir", str(data)], again, io.StringIO()) == 0
    assert again.getvalue() == "RuntimeProfile billing: unchanged\n"
    exported = io.StringIO()
    code = main(["export", "--kind", "profile", "--data-dir", str(data)], exported, io.StringIO())
    assert code == 0
    (document,) = yaml.safe_load(exported.getvalue())
    assert document == {
        **yaml.safe_load(PROFILE_YAML)[0],
        "executables": [
            {"path": "/bin/sh", "sha256": None},
            {"path": "/usr/local/bin/billing", "sha256": "ab" * 32},
        ],
        "listeners": [{"protocol": "tcp", "port": 8443, "address": ""}],
    }
    edited = PROFILE_YAML.replace("port: 8443", "port: 9443")
    source.write_text(edited)
    changed = io.StringIO()
    assert main(["apply", "-f", str(source), "--data-dir", str(data)], changed, io.StringIO()) == 0
    assert changed.getvalue() == "RuntimeProfile billing: updated\n"


def test_a_bad_runtime_profile_document_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    source = tmp_path / "bad.yaml"
    source.write_text(PROFILE_YAML.replace("/bin/sh", "bin/sh"))
    err = io.StringIO()
    code = main(["apply", "-f", str(source), "--data-dir", str(tmp_path / "d")], io.StringIO(), err)
    assert code == 2
    assert "document 1.executables[1].path: 'bin/sh' is not an absolute path" in err.getvalue()


def test_the_ci_gate_reads_an_apply_file_with_runtime_profiles_leaving_them_out(
    tmp_path: Path,
) -> None:
    source = tmp_path / "all.yaml"
    source.write_text(PROFILE_YAML + "- kind: Policy\n  name: no criticals\n")
    policies, acks = policies_from_file(source, datetime(2026, 3, 1, tzinfo=UTC))
    assert ([p.name for p in policies], acks) == (["no criticals"], [])
