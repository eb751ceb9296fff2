"""`enforcer.profiler`: observation keys (what is seen, not when), the profiling request in a
container's environment, volumes from config.json and podman inspect, and the profiler recording
and delivering against a real console (the app on SQLite and PostgreSQL through its test client):
each thing once, through a console outage and an enforcer restart; env sessions started, joined
and stopped with their last container; a record the console refuses is dropped, not retried."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from console.conftest import (  # noqa: F401  (fixtures reused by name)
    app,
    client,
    clock,
    database,
    db_url,
    headers_for,
    pg_cluster,
    settings,
    token_for,
)
from helpers.clock import FakeClock
from tidegate.client.base import ConsoleClient
from tidegate.core.bundle import PolicyBundle, bundle_from_json
from tidegate.core.drift import ExecDecision, ExecRequest
from tidegate.core.errors import ConsoleError
from tidegate.core.profile import NetEndpoint, Observation, ObservationKind
from tidegate.core.roles import Role
from tidegate.enforcer.monitor import WatchedContainer
from tidegate.enforcer.netwatch import Connection, Listener, NetSnapshot, Protocol
from tidegate.enforcer.profiler import (
    ContainerFacts,
    EnvRequest,
    Profiler,
    env_request,
    facts_from_config,
    facts_from_inspect,
    observation_key,
)

API = "/api/v1"
IMAGE = "localhost:5000/shop/api:1"
CID = "c" * 64
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
"""The console's idempotency key format."""


def _exec(path: str, sha: str | None = "a" * 64, *, at: datetime = T0) -> Observation:
    return Observation(ObservationKind.EXEC, CID, at, path=path, sha256=sha)


def test_an_observation_key_says_what_was_seen_not_when() -> None:
    key = observation_key("s:1", _exec("/bin/sh"))
    assert KEY.fullmatch(key)
    assert observation_key("s:1", _exec("/bin/sh", at=T0 + timedelta(hours=1))) == key
    others = [
        observation_key("s:2", _exec("/bin/sh")),
        observation_key("e:shop", _exec("/bin/sh")),
        observation_key("s:1", _exec("/bin/ls")),
        observation_key("s:1", _exec("/bin/sh", "b" * 64)),
        observation_key("s:1", _exec("/bin/sh", None)),
        observation_key("s:1", Observation(ObservationKind.EXEC, "d" * 64, T0, path="/bin/sh")),
        observation_key("s:1", Observation(ObservationKind.VOLUME, CID, T0, destination="/bin/sh")),
        observation_key(
            "s:1", Observation(ObservationKind.LISTEN, CID, T0, endpoint=NetEndpoint("tcp", 80))
        ),
        observation_key(
            "s:1", Observation(ObservationKind.CONNECT, CID, T0, endpoint=NetEndpoint("tcp", 80))
        ),
        observation_key(
            "s:1", Observation(ObservationKind.LISTEN, CID, T0, endpoint=NetEndpoint("udp", 80))
        ),
    ]
    assert len({key, *others}) == len(others) + 1


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (["PATH=/bin", "TIDEGATE_PROFILE=shop-api"], EnvRequest("shop-api", append=False)),
        (["TIDEGATE_PROFILE=shop", "TIDEGATE_PROFILE_APPEND=1"], EnvRequest("shop", append=True)),
        (["TIDEGATE_PROFILE=shop", "TIDEGATE_PROFILE_APPEND=true"], EnvRequest("shop", True)),
        (["TIDEGATE_PROFILE=shop", "TIDEGATE_PROFILE_APPEND=0"], EnvRequest("shop", False)),
        (["TIDEGATE_PROFILE=a", "TIDEGATE_PROFILE=b"], EnvRequest("b")),  # the last one wins
        (["TIDEGATE_PROFILE="], None),
        (["TIDEGATE_PROFILE_APPEND=1"], None),
        (["TIDEGATE_PROFILE"], None),
        ([7, None, {"TIDEGATE_PROFILE": "x"}], None),  # hostile entries are skipped
        ([], None),
    ],
)
def test_the_profiling_request_in_the_environment(
    env: list[Any], expected: EnvRequest | None
) -> None:
    assert env_request(env) == expected


def test_volumes_and_env_from_config_json() -> None:
    config = {
        "process": {"env": ["PATH=/bin", "TIDEGATE_PROFILE=shop"]},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
            {"destination": "/etc/hosts", "type": "bind", "source": "/run/c/hosts"},
            {"destination": "/run/.containerenv", "type": "bind", "source": "/run/c/env"},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["ro"]},
            {"destination": "/cache", "source": "/var/lib/v/cache/_data", "options": ["rbind"]},
            {"destination": 5, "type": "bind", "source": "/x"},
            "not a mount",
        ],
    }
    facts = facts_from_config(config)
    assert facts.env == EnvRequest("shop")
    assert facts.volumes == (("/cache", "/var/lib/v/cache/_data"), ("/data", "/srv/data"))
    assert facts_from_config({"mounts": "x", "process": []}) == ContainerFacts()


def test_volumes_and_env_from_podman_inspect() -> None:
    doc = {
        "Config": {"Env": ["TIDEGATE_PROFILE=shop", "TIDEGATE_PROFILE_APPEND=yes"]},
        "Mounts": [
            {"Type": "volume", "Name": "cache", "Source": "/var/lib/v/cache/_data",
             "Destination": "/cache"},
            {"Type": "bind", "Source": "/srv/data", "Destination": "/data"},
            {"Type": "tmpfs", "Source": "tmpfs", "Destination": "/scratch"},
        ],
    }  # fmt: skip
    facts = facts_from_inspect(doc)
    assert facts.env == EnvRequest("shop", append=True)
    assert facts.volumes == (("/cache", "cache"), ("/data", "/srv/data"))


# -- recording and delivery against a real console ----------------------------------------------


def _bridge(test_client: TestClient) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        answer = test_client.request(
            request.method, str(request.url), headers=request.headers, content=request.content
        )
        headers = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("content-encoding", "content-length")
        }
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)

    return httpx.MockTransport(handle)


class Console:
    def __init__(self, test_client: TestClient, headers: Callable[[Role], dict[str, str]]) -> None:
        self.http = test_client
        self.analyst = headers(Role.SECURITY_ANALYST)
        group = test_client.post(
            f"{API}/enforcer-groups", json={"name": "hosts"}, headers=headers(Role.ADMINISTRATOR)
        )
        assert group.status_code == 201, group.text
        self.token = str(group.json()["token"])

    def enforcer_client(self) -> ConsoleClient:
        return ConsoleClient("http://testserver", self.token, transport=_bridge(self.http))

    def bundle(self) -> PolicyBundle:
        answer = self.http.get(
            f"{API}/enforcer/bundle", headers={"Authorization": f"Bearer {self.token}"}
        )
        assert answer.status_code == 200, answer.text
        return bundle_from_json(answer.content)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.http.request(method, f"{API}{path}", headers=self.analyst, **kwargs)
        assert answer.status_code < 300, answer.text
        return answer.json() if answer.content else None


@pytest.fixture
def console(
    client: TestClient,  # noqa: F811
    headers_for: Callable[[Role], dict[str, str]],  # noqa: F811
) -> Console:
    return Console(client, headers_for)


class Net:
    """What `netwatch.snapshot` reports for the container's pid."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, pid: int) -> NetSnapshot:
        self.calls.append(pid)
        return NetSnapshot(
            listeners=(Listener(Protocol.TCP, "0.0.0.0", 8080),),
            outbound=(Connection(Protocol.TCP, "10.0.0.5", 5432),),
        )


@pytest.fixture
def profilers(tmp_path: Path) -> Iterator[Callable[..., Profiler]]:
    made: list[Profiler] = []

    def make(enforcer_client: ConsoleClient, log: list[str] | None = None) -> Profiler:
        profiler = Profiler(
            enforcer_client,
            tmp_path / "observations.sqlite",
            clock=lambda: T0,
            say=(log if log is not None else []).append,
            netwatch=Net(),
        )
        made.append(profiler)
        return profiler

    yield make
    for profiler in made:
        profiler.stop()


def _container(image: str = IMAGE, cid: str = CID) -> WatchedContainer:
    return WatchedContainer(cid, "/m", "/u", image_ref=image, pid=4242)


def _run(profiler: Profiler, container: WatchedContainer) -> None:
    """A test phase: three execs (one twice, one denied), two network polls."""
    for path in ("/bin/sh", "/app/migrate", "/bin/sh"):
        request = ExecRequest(container.container_id, None, path, "a" * 64, False, 7)
        profiler.on_exec(container, request, ExecDecision(allowed=True))
    denied = ExecRequest(container.container_id, None, "/tmp/evil", None, True, 7)
    profiler.on_exec(container, denied, ExecDecision(allowed=False))
    profiler.poll_network()
    profiler.poll_network()


def test_a_session_learns_each_thing_once_through_an_outage_and_a_restart(
    console: Console,
    profilers: Callable[..., Profiler],
    clock: FakeClock,  # noqa: F811
) -> None:
    session = console.api("POST", "/profiles/sessions", json={"image": IMAGE, "profile": "shop"})
    away = ConsoleClient("http://127.0.0.1:9", console.token, timeout=1)
    profiler = profilers(away)
    profiler.update(console.bundle())
    container = _container()
    profiler.track(container, ContainerFacts(volumes=(("/data", "/srv/data"),)))
    assert profiler.profiled(CID)
    _run(profiler, container)
    assert profiler.pending() == 5  # volume, 2 execs, listener, outbound
    with pytest.raises(ConsoleError):
        profiler.flush()
    assert profiler.pending() == 5
    profiler.stop()

    # A restarted enforcer sees the container again, records it all again, and delivers once.
    profiler = profilers(console.enforcer_client())
    profiler.update(console.bundle())
    profiler.track(container, ContainerFacts(volumes=(("/data", "/srv/data"),)))
    _run(profiler, container)
    assert profiler.pending() == 5  # the spool kept one record per key
    assert profiler.flush() == 5
    _run(profiler, _container())
    profiler.flush()
    assert profiler.pending() == 0
    profiler.exited(CID)
    profiler.flush()

    clock.advance(timedelta(minutes=1))
    stopped = console.api("POST", f"/profiles/sessions/{session['id']}/stop")
    assert stopped["observations"] == 5
    profile = stopped["profile"]
    assert {e["path"] for e in profile["executables"]} == {"/bin/sh", "/app/migrate"}
    assert profile["volumes"] == [{"destination": "/data", "source": "/srv/data"}]
    assert profile["listeners"] == [{"protocol": "tcp", "port": 8080, "address": ""}]
    assert profile["outbound"] == [{"protocol": "tcp", "port": 5432, "address": "10.0.0.5"}]

    # The session is gone from the next bundle: the container is no longer profiled, and the
    # profile (audit) applies to it.
    bundle = console.bundle()
    profiler.track(container, ContainerFacts())
    profiler.update(bundle)
    assert not profiler.profiled(CID)
    applied = bundle.profile_for("localhost:5000/shop/api")
    assert applied is not None
    assert (applied.name, applied.mode, set(applied.executables)) == (
        "shop", "audit", {"/bin/sh", "/app/migrate"},
    )  # fmt: skip


def test_a_container_with_tidegate_profile_starts_joins_and_stops_its_session(
    console: Console, profilers: Callable[..., Profiler]
) -> None:
    log: list[str] = []
    profiler = profilers(console.enforcer_client(), log)
    profiler.update(console.bundle())
    first, second = _container(cid="1" * 64), _container(cid="2" * 64)
    for container in (first, second):
        profiler.track(container, ContainerFacts(env=EnvRequest("batch")))
        _run(profiler, container)
    profiler.flush()
    (session,) = console.api("GET", "/profiles/sessions", params={"profile": "batch"})
    assert (session["origin"], session["state"]) == ("env", "active")
    assert sorted(session["containers"]) == ["1" * 64, "2" * 64]
    assert sum("started profiling session" in line for line in log) == 1
    assert sum("joined profiling session" in line for line in log) == 1

    profiler.exited(first.container_id)
    profiler.flush()
    assert console.api("GET", f"/profiles/sessions/{session['id']}")["state"] == "active"
    profiler.exited(second.container_id)
    profiler.flush()
    assert console.api("GET", f"/profiles/sessions/{session['id']}")["state"] == "stopped"
    profile = console.api("GET", "/profiles/batch")
    assert (profile["mode"], profile["repository"]) == ("audit", "localhost:5000/shop/api")
    assert {e["path"] for e in profile["executables"]} == {"/bin/sh", "/app/migrate"}


def test_a_record_the_console_refuses_is_dropped_and_the_rest_delivered(
    console: Console, profilers: Callable[..., Profiler]
) -> None:
    # "shop" belongs to another repository: the container's env session is refused (409).
    console.api("PUT", "/profiles/shop", json={"repository": "localhost:5000/shop/api"})
    log: list[str] = []
    profiler = profilers(console.enforcer_client(), log)
    profiler.update(console.bundle())
    refused = _container(image="localhost:5000/other/app:1", cid="1" * 64)
    profiler.track(refused, ContainerFacts(env=EnvRequest("shop")))
    _run(profiler, refused)
    good = _container(image="localhost:5000/batch/job:1", cid="2" * 64)
    profiler.track(good, ContainerFacts(env=EnvRequest("batch")))
    _run(profiler, good)
    profiler.flush()
    assert profiler.pending() == 0
    assert any("refused by the console, dropped" in line for line in log)
    (session,) = console.api("GET", "/profiles/sessions", params={"profile": "batch"})
    assert session["containers"] == ["2" * 64]
    assert console.api("GET", "/profiles/sessions", params={"profile": "shop"}) == []
