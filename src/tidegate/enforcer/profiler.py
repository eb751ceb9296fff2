"""The enforcer's image profiler: what profiled containers do, recorded for the console.

Owns: which watched containers are being profiled and for which session, the recording of
their executables (from the monitor's `on_exec`), volume mounts (from `config.json` or `podman
inspect` at start) and network listeners and outbound connections (`netwatch.snapshot` of the
container's init process every `net_interval` seconds), and the delivery of all of it through an
on-disk spool of its own (`observations.sqlite`, the event spool's class).

A container is profiled when
- the bundle has an active session for its image repository (and its image, when the session
  names a digest: `PolicyBundle.sessions_for`), or
- it was started with `TIDEGATE_PROFILE=<name>` in its environment (`TIDEGATE_PROFILE_APPEND=1`:
  append). Such a container records into the profile's env session, which the console starts or
  joins (`join_env_session`) when the spooled join reaches it; only that session, never a bundle
  session of the same repository as well.

Delivery has the event spool's guarantees. Each observation's idempotency key is derived from
what it says (session or env profile, container, kind, content) and never from when it was seen:
the same thing seen again (another exec of the same file, the same listener on the next poll,
the same container watched again after an enforcer restart) is the same key, stored once by the
console. A record leaves the spool only when the console answered for it. Records are sent in
the order they were spooled (join, observations, exit), so a container's exit, which may stop
its env session, reaches the console after everything the container did. A record the console
refuses outright (4xx: a profile name in use for another repository, an unknown session) is
dropped with a message: it could never be delivered, and must not block the others.

While a container is profiled, the profile it is teaching is not checked against its execs
(`profiled`): learning must see what the application does, not what the old profile allows.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tidegate.client.base import ConsoleClient
from tidegate.client.profiles import container_exited, join_env_session, upload_observations
from tidegate.core.bundle import PolicyBundle
from tidegate.core.drift import ExecDecision, ExecRequest
from tidegate.core.errors import ConsoleApiError
from tidegate.core.profile import (
    NetEndpoint,
    Observation,
    ObservationKind,
    observation_to_json,
    repository_of,
)
from tidegate.enforcer.monitor import WatchedContainer
from tidegate.enforcer.netwatch import NetWatchError, snapshot
from tidegate.enforcer.spool import Spool, SpooledEvent

__all__ = [
    "ENV_APPEND",
    "ENV_PROFILE",
    "ContainerFacts",
    "EnvRequest",
    "Profiler",
    "env_request",
    "facts_from_config",
    "facts_from_inspect",
    "observation_key",
]

ENV_PROFILE = "TIDEGATE_PROFILE"
ENV_APPEND = "TIDEGATE_PROFILE_APPEND"
NET_INTERVAL = 1.0
BATCH = 500
_TRUE = frozenset({"1", "true", "yes", "on"})
_ENGINE_MOUNTS = frozenset(
    {
        "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/run/.containerenv", "/dev/shm",
        "/run/secrets", "/etc/passwd", "/etc/group", "/run/secrets/kubernetes.io/serviceaccount",
    }
)  # fmt: skip
"""Mounts the engine adds to every container: not volumes of the application."""
_SYSTEM_ROOTS = ("/proc", "/sys", "/dev")

Clock = Callable[[], datetime]
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class EnvRequest:
    """A container's `TIDEGATE_PROFILE` request."""

    profile: str
    append: bool = False


@dataclass(frozen=True, slots=True)
class ContainerFacts:
    """What the profiler needs of a container beyond what the monitor watches."""

    env: EnvRequest | None = None
    volumes: tuple[tuple[str, str], ...] = ()
    """(destination, source) of each volume or bind mount the container was started with."""


def env_request(env: Iterable[object]) -> EnvRequest | None:
    """The profiling request in a container's environment ("NAME=value" entries; the last of a
    name wins, as for the process). None without TIDEGATE_PROFILE or with it empty."""
    values: dict[str, str] = {}
    for entry in env:
        if isinstance(entry, str) and "=" in entry:
            name, value = entry.split("=", 1)
            values[name] = value
    profile = values.get(ENV_PROFILE, "").strip()
    if not profile:
        return None
    return EnvRequest(profile, values.get(ENV_APPEND, "").strip().lower() in _TRUE)


def _volume(destination: object, source: object, kind: str) -> tuple[str, str] | None:
    if not isinstance(destination, str) or not destination.startswith("/"):
        return None
    if destination in _ENGINE_MOUNTS or any(
        destination == root or destination.startswith(root + "/") for root in _SYSTEM_ROOTS
    ):
        return None
    if kind not in ("bind", "volume"):
        return None
    return destination, source if isinstance(source, str) else ""


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def facts_from_config(config: Mapping[str, Any]) -> ContainerFacts:
    """From an OCI `config.json` (hostile: whatever has the wrong type is left out)."""
    volumes = []
    for raw in _list(config.get("mounts")):
        mount = _dict(raw)
        options = _list(mount.get("options"))
        kind = (
            "bind" if mount.get("type") == "bind" or "bind" in options or "rbind" in options else ""
        )
        found = _volume(mount.get("destination"), mount.get("source"), kind)
        if found is not None:
            volumes.append(found)
    env = _list(_dict(config.get("process")).get("env"))
    return ContainerFacts(env=env_request(env), volumes=tuple(sorted(set(volumes))))


def facts_from_inspect(doc: Mapping[str, Any]) -> ContainerFacts:
    """From one `podman inspect` document (its Mounts list only the user's)."""
    volumes = []
    for raw in _list(doc.get("Mounts")):
        mount = _dict(raw)
        kind = str(mount.get("Type") or "")
        source = (
            mount.get("Name") if kind == "volume" and mount.get("Name") else mount.get("Source")
        )
        found = _volume(mount.get("Destination"), source, kind)
        if found is not None:
            volumes.append(found)
    env = _list(_dict(doc.get("Config")).get("Env"))
    return ContainerFacts(env=env_request(env), volumes=tuple(sorted(set(volumes))))


def _content(seen: Observation) -> str:
    match seen.kind:
        case ObservationKind.EXEC:
            return f"{seen.path}\0{seen.sha256 or ''}"
        case ObservationKind.VOLUME:
            return f"{seen.destination}\0{seen.source}"
        case _:
            point = seen.endpoint or NetEndpoint("tcp", 0)
            return f"{point.protocol}\0{point.port}\0{point.address}"


def observation_key(scope: str, seen: Observation) -> str:
    """The idempotency key of an observation for a session ("s:<id>") or an env profile
    ("e:<name>"): a hash of what it says, not of when it was seen."""
    text = f"{scope}\0{seen.container_id}\0{seen.kind.value}\0{_content(seen)}"
    return "o-" + hashlib.sha256(text.encode()).hexdigest()[:40]


@dataclass
class _Tracked:
    container: WatchedContainer
    facts: ContainerFacts
    scopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Scope ("s:<session id>" / "e:<profile>") -> what its records carry to find the session."""
    seen: set[str] = field(default_factory=set)
    """Keys recorded by this process (the spool and the console drop repeats anyway)."""


class Profiler:
    """Records what profiled containers do; `flush` delivers it (called by the agent's sync)."""

    def __init__(
        self,
        client: ConsoleClient,
        spool_path: Path,
        *,
        clock: Clock,
        say: Say,
        wake: Callable[[], None] = lambda: None,
        net_interval: float = NET_INTERVAL,
        netwatch: Callable[[int], Any] = snapshot,
    ) -> None:
        self.client = client
        self.spool = Spool(spool_path)
        self._clock = clock
        self._say = say
        self._wake = wake
        self.net_interval = net_interval
        self._netwatch = netwatch
        self._tracked: dict[str, _Tracked] = {}
        self._bundle: PolicyBundle | None = None
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._env_sessions: dict[tuple[str, str], str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Poll the network of profiled containers in the background."""
        self._thread = threading.Thread(target=self._net_loop, name="profiler-net", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.spool.close()

    # -- which containers ---------------------------------------------------------------------

    def _scopes(self, tracked: _Tracked) -> dict[str, dict[str, Any]]:
        container, env = tracked.container, tracked.facts.env
        if env is not None:
            return {f"e:{env.profile}": {"env": _join_fields(container, env)}}
        bundle = self._bundle
        if bundle is None or not container.image_ref:
            return {}
        targets = bundle.sessions_for(
            repository_of(container.image_ref),
            image_id=container.image_id,
            image_ref=container.image_ref,
        )
        return {f"s:{t.id}": {"session_id": t.id} for t in targets}

    def update(self, bundle: PolicyBundle) -> None:
        """A new bundle: containers start or stop being profiled as its sessions say."""
        with self._lock:
            self._bundle = bundle
            tracked = list(self._tracked.values())
        for item in tracked:
            self._rescope(item)

    def _rescope(self, tracked: _Tracked) -> None:
        scopes = self._scopes(tracked)
        with self._lock:
            added = {k: v for k, v in scopes.items() if k not in tracked.scopes}
            tracked.scopes = scopes
        for scope in added:
            cid = tracked.container.container_id
            self._say(f"profiling container {cid[:12]} ({scope[2:]})")
            self._record_volumes(tracked, scope)

    def track(self, container: WatchedContainer, facts: ContainerFacts) -> None:
        """A container the monitor watches from now on (before it does: its first exec is
        recorded); an env request is spooled as a join of the profile's session."""
        tracked = _Tracked(container, facts)
        with self._lock:
            self._tracked[container.container_id] = tracked
        env = facts.env
        if env is not None:
            join = {"op": "join", **_join_fields(container, env)}
            digest = hashlib.sha256(f"{container.container_id}\0{env.profile}".encode())
            self.spool.append(join, key="j-" + digest.hexdigest()[:40])
        self._rescope(tracked)
        self._wake()

    def profiled(self, container_id: str) -> bool:
        with self._lock:
            tracked = self._tracked.get(container_id)
            return tracked is not None and bool(tracked.scopes)

    def exited(self, container_id: str) -> None:
        """The container stopped: the console hears it after all it did (its env session may
        stop with it)."""
        with self._lock:
            tracked = self._tracked.pop(container_id, None)
        if tracked is None or not tracked.scopes:
            return
        self.spool.append(
            {"op": "exited", "container_id": container_id}, key="x-" + uuid.uuid4().hex
        )
        self._wake()

    # -- recording ----------------------------------------------------------------------------

    def _record(self, tracked: _Tracked, seen: Observation, scopes: Iterable[str]) -> None:
        fresh = False
        for scope in scopes:
            key = observation_key(scope, seen)
            with self._lock:
                where = tracked.scopes.get(scope)
                if where is None or key in tracked.seen:
                    continue
                tracked.seen.add(key)
            body = {"op": "observe", **where, "observation": observation_to_json(seen)}
            self.spool.append(body, key=key)
            fresh = True
        if fresh:
            self._wake()

    def _record_volumes(self, tracked: _Tracked, scope: str) -> None:
        now = self._clock()
        for destination, source in tracked.facts.volumes:
            seen = Observation(
                kind=ObservationKind.VOLUME,
                container_id=tracked.container.container_id,
                observed_at=now,
                destination=destination,
                source=source,
            )
            self._record(tracked, seen, [scope])

    def on_exec(
        self, container: WatchedContainer, request: ExecRequest, decision: ExecDecision
    ) -> None:
        """The monitor's observer: an exec a profiled container was let do is learned."""
        with self._lock:
            tracked = self._tracked.get(container.container_id)
            scopes = list(tracked.scopes) if tracked is not None else []
        if tracked is None or not scopes or not decision.allowed:
            return
        seen = Observation(
            kind=ObservationKind.EXEC,
            container_id=container.container_id,
            observed_at=self._clock(),
            path=request.path,
            sha256=request.sha256,
        )
        self._record(tracked, seen, scopes)

    def poll_network(self) -> None:
        """One look at the listeners and outbound connections of every profiled container."""
        with self._lock:
            items = [(t, list(t.scopes)) for t in self._tracked.values() if t.scopes]
        for tracked, scopes in items:
            pid = tracked.container.pid
            if pid is None:
                continue
            try:
                found = self._netwatch(pid)
            except NetWatchError:
                continue  # gone: the reaper tells the rest
            now, cid = self._clock(), tracked.container.container_id
            for listener in found.listeners:
                if listener.port < 1:
                    continue
                address = "" if listener.address in ("0.0.0.0", "::") else listener.address
                point = NetEndpoint(str(listener.protocol), listener.port, address)
                seen = Observation(ObservationKind.LISTEN, cid, now, endpoint=point)
                self._record(tracked, seen, scopes)
            for conn in found.outbound:
                if conn.remote_port < 1:
                    continue
                point = NetEndpoint(str(conn.protocol), conn.remote_port, conn.remote_address)
                seen = Observation(ObservationKind.CONNECT, cid, now, endpoint=point)
                self._record(tracked, seen, scopes)

    def _net_loop(self) -> None:
        while not self._stop.wait(self.net_interval):
            try:
                self.poll_network()
            except Exception as exc:  # a poll must never end the loop; say why and go on
                self._say(f"profiler: network poll failed: {exc}")

    # -- delivery -----------------------------------------------------------------------------

    def pending(self) -> int:
        return self.spool.count()

    def flush(self) -> int:
        """Deliver the spooled records in order; how many left the spool. A console error other
        than a refusal of a record propagates (the rest waits for the next round)."""
        with self._flush_lock:
            done = 0
            while records := self.spool.pending(BATCH):
                moved = self._deliver(records)
                done += moved
                if moved < len(records):
                    break
            return done

    def _deliver(self, records: list[SpooledEvent]) -> int:
        """Send records in order: runs of observations as one batch, joins and exits alone."""
        done, run = 0, []
        for record in records:
            if record.body.get("op") == "observe":
                run.append(record)
                continue
            done += self._upload(run)
            run = []
            self._one(record)
            done += self.spool.confirm([record.key])
        return done + self._upload(run)

    def _one(self, record: SpooledEvent) -> None:
        body = record.body
        try:
            if body.get("op") == "join":
                self._join(body)
            elif body.get("op") == "exited":
                stopped = container_exited(self.client, container_id=str(body["container_id"]))
                for session_id in stopped:
                    self._say(f"profiling session {session_id} stopped: its containers exited")
        except ConsoleApiError as exc:
            if not _refused(exc):
                raise
            self._say(f"profiling record {record.key} refused by the console, dropped: {exc}")

    def _join(self, body: Mapping[str, Any]) -> str:
        cid, profile = str(body["container_id"]), str(body["profile"])
        known = self._env_sessions.get((cid, profile))
        if known is not None:
            return known
        joined = join_env_session(
            self.client,
            profile=profile,
            image_ref=str(body.get("image_ref") or ""),
            container_id=cid,
            digest=body.get("digest") if isinstance(body.get("digest"), str) else None,
            append=bool(body.get("append")),
        )
        how = "started" if joined.started else "joined"
        self._say(f"container {cid[:12]} {how} profiling session {joined.session_id} ({profile})")
        self._env_sessions[(cid, profile)] = joined.session_id
        return joined.session_id

    def _wire(self, record: SpooledEvent) -> dict[str, Any]:
        """The record as the console's batch takes it (an env record gets its session id)."""
        body = record.body
        observation = dict(body["observation"])
        session_id = body.get("session_id")
        if session_id is None:  # an env record: the session is the one its container joined
            session_id = self._join(body["env"])
        return {"key": record.key, "session_id": session_id, **observation}

    def _upload(self, run: list[SpooledEvent]) -> int:
        if not run:
            return 0
        try:
            answer = upload_observations(self.client, [self._wire(r) for r in run])
        except ConsoleApiError as exc:
            if not _refused(exc) or len(run) == 1:
                if not _refused(exc):
                    raise
                self._say(f"observation {run[0].key} refused by the console, dropped: {exc}")
                return self.spool.confirm([run[0].key])
            # One bad record refuses its whole batch: find it by sending them one by one.
            return sum(self._upload([record]) for record in run)
        return self.spool.confirm(k for k in answer.answered if k in {r.key for r in run})


def _join_fields(container: WatchedContainer, env: EnvRequest) -> dict[str, Any]:
    """What the console needs to start or join the env session (kept in every env record, so
    a record spooled before an enforcer restart can still find its session)."""
    return {
        "container_id": container.container_id,
        "profile": env.profile,
        "image_ref": container.image_ref,
        "digest": container.image_id,
        "append": env.append,
    }


def _refused(exc: ConsoleApiError) -> bool:
    """A refusal no retry can change (not a timeout, a throttle, or the console's own error)."""
    status = exc.status or 0
    return 400 <= status < 500 and status not in (401, 403, 408, 425, 429)
