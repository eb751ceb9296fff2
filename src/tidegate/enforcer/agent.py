"""The enforcer agent: the console connection, the cached policy bundle, and decisions.

It registers with the console, heartbeats, polls the bundle with its version as ETag and keeps
it on disk (atomic writes), so decisions keep coming from the last bundle while the console is
away and after an enforcer restart. Every decision's events go to the on-disk spool first and
are uploaded by the same background loop, which wakes as soon as an event is spooled.

Without any bundle (never reached the console, nothing cached), a start cannot be decided: the
caller applies the fail mode (open until the console has said otherwise).

The runtime monitor (`start_monitor`): one fanotify `Monitor` deciding execs from the same
bundle, its events spooled like the start decisions. It watches every container whose start the
hook let through (`watch`, before the hook's answer, so the container's first exec is already
seen), the containers already running when the agent starts (`podman inspect`), and forgets a
container once its init process has left (a poll every `reap_interval` seconds, /proc only).
Where fanotify is unavailable (not root, a kernel without FAN_OPEN_EXEC_PERM or filesystem
marks) the agent says so once, records an alert event, and goes on deciding starts.

Image profiles and profiling: the monitor checks a container's execs against the bundle's profile
of its image repository (`profile_for`; none while the container is being profiled), and the
`Profiler` (enforcer/profiler.py) records what profiled containers do; its spool is delivered by
the same sync loop, and it hears of every new bundle, watched container and reaped one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TextIO

from tidegate import __version__
from tidegate.client.base import ConsoleClient
from tidegate.client.enforcer import fetch_bundle, heartbeat, register_enforcer, upload_events
from tidegate.core.bundle import (
    BundleError,
    FailMode,
    PolicyBundle,
    bundle_from_json,
    bundle_to_json,
)
from tidegate.core.drift import ImageProfile
from tidegate.core.errors import ConsoleError
from tidegate.core.modes import Action
from tidegate.core.profile import repository_of
from tidegate.core.runtime import AdmissionDecision, ContainerRequest, Violation, decide
from tidegate.enforcer.errors import EnforcerError, StateDirError
from tidegate.enforcer.hook import FAIL_MODE_FILE
from tidegate.enforcer.monitor import (
    Monitor,
    WatchedContainer,
    container_id_of_cgroup,
    inspect_documents,
    watched_from_inspect,
)
from tidegate.enforcer.profiler import ContainerFacts, Profiler, facts_from_inspect
from tidegate.enforcer.spool import Spool
from tidegate.enforcer.state import StateDir, atomic_write

__all__ = ["Agent", "Outcome", "container_alive", "events_for"]

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an admission point answers: allowed or not, the message, DETECT warnings."""

    allowed: bool
    message: str
    warnings: tuple[str, ...] = ()
    decision: AdmissionDecision | None = None
    """None: undecided (no bundle), the fail mode answered."""


@dataclass
class _Status:
    console_reachable: bool = False
    last_error: str | None = None
    enforcer_id: str | None = None
    last_sync: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def events_for(
    decision: AdmissionDecision,
    request: ContainerRequest,
    *,
    source: str,
    bundle: PolicyBundle,
    now: datetime,
) -> list[dict[str, Any]]:
    """One event per violation (and an `info` event for a clean start if the group audits all)."""
    base = {
        "occurred_at": now.isoformat(),
        "source": source,
        "host": request.host,
        "enforcer_group": request.enforcer_group,
        "container_id": request.container_id,
        "container_name": request.name,
        "namespace": request.namespace,
        "image": request.image_ref,
        "image_id": request.image_id,
        "manifest_digest": request.manifest_digest,
        "bundle_version": bundle.version,
        "allowed": decision.allowed,
    }
    if not decision.violations:
        if not bundle.group.audit_all:
            return []
        clean = {"level": "info", "action": Action.ALLOW.value, "message": decision.message}
        modes = {"policy_mode": None, "enforcer_mode": bundle.group.mode.value}
        return [{**base, **clean, **modes, "effective_mode": None, "control": None}]
    return [{**base, **_violation_fields(v)} for v in decision.violations]


def _violation_fields(v: Violation) -> dict[str, Any]:
    return {
        "level": "block" if v.blocks else "detect",
        "action": v.decision.action.value,
        "message": v.describe(),
        "policy_id": v.policy_id,
        "policy_name": v.policy_name,
        "policy_version": v.policy_version,
        "control": v.control.value,
        "engine_level": v.engine_level,
        "policy_mode": v.decision.policy_mode.value,
        "enforcer_mode": v.decision.point_mode.value,
        "effective_mode": v.decision.effective_mode.value,
    }


def container_alive(container: WatchedContainer, proc: str = "/proc") -> bool:
    """Whether the container still runs: its init process is still in the container's cgroup
    (a pid reused by another process is not), or, without a pid, its root is still mounted."""
    if container.pid is None:
        return os.path.ismount(container.merged_dir)
    try:
        with open(f"{proc}/{container.pid}/cgroup", encoding="utf-8", errors="replace") as f:
            text = f.read(65536)
    except OSError:
        return False
    return container_id_of_cgroup(text) == container.container_id


class Agent:
    """One host's enforcer: decide from the bundle, keep the console informed."""

    def __init__(
        self,
        client: ConsoleClient,
        state: StateDir,
        *,
        hostname: str,
        poll_interval: float = 5.0,
        clock: Clock = _utcnow,
        log: TextIO | None = None,
    ) -> None:
        self.client = client
        self.state = state.create()
        self.hostname = hostname
        self.poll_interval = poll_interval
        self.clock = clock
        self.log = log
        self.spool = Spool(state.spool)
        self._bundle: PolicyBundle | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status = _Status()
        self._registered = False
        self.monitor: Monitor | None = None
        self._reaper: threading.Thread | None = None
        self.profiler = Profiler(
            client,
            state.root / "observations.sqlite",
            clock=clock,
            say=self.say,
            wake=self._wake.set,
        )
        self._load_identity()
        self._load_cached_bundle()

    # -- bundle ---------------------------------------------------------------------------

    @property
    def bundle(self) -> PolicyBundle | None:
        with self._lock:
            return self._bundle

    def say(self, text: str) -> None:
        if self.log is not None:
            self.log.write(f"tidegate enforcer: {text}\n")
            self.log.flush()

    def _load_cached_bundle(self) -> None:
        try:
            data = self.state.bundle.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateDirError(f"cannot read {self.state.bundle}: {exc.strerror}") from exc
        try:
            self._install(bundle_from_json(data), persist=False)
        except BundleError as exc:
            self.say(f"cached bundle {self.state.bundle} ignored: {exc}")

    def _install(self, bundle: PolicyBundle, *, persist: bool = True) -> None:
        if persist:
            atomic_write(self.state.bundle, bundle_to_json(bundle))
        # The hook reads the fail mode on its own when this process cannot be asked.
        atomic_write(
            self.state.root / FAIL_MODE_FILE, bundle.group.fail_mode.value.encode(), mode=0o644
        )
        with self._lock:
            self._bundle = bundle
        self.profiler.update(bundle)
        monitor = self.monitor
        if monitor is not None:
            monitor.refresh()  # profiles and profiled containers are asked again

    def _load_identity(self) -> None:
        identity = self.state.read_json(self.state.identity) or {}
        eid = identity.get("enforcer_id")
        self.status.enforcer_id = str(eid) if eid else None

    # -- console --------------------------------------------------------------------------

    def sync(self) -> bool:
        """One round with the console: register, heartbeat, bundle, events. False: it is away."""
        try:
            if not self._registered:  # once per process: a restart keeps its id
                registered = register_enforcer(
                    self.client,
                    hostname=self.hostname,
                    version=__version__,
                    enforcer_id=self.status.enforcer_id,
                )
                self._registered = True
                self.status.enforcer_id = registered.enforcer_id
                self.state.write_json(self.state.identity, {"enforcer_id": registered.enforcer_id})
            current = self.bundle
            fresh = fetch_bundle(self.client, have=current.version if current else None)
            if fresh is not None and (current is None or fresh.version != current.version):
                self._install(fresh)
                self.say(
                    f"bundle {fresh.version[:19]} (group {fresh.group.name}, {fresh.group.mode})"
                )
            self.flush_events()
            self.profiler.flush()
            current = self.bundle
            detail = {
                "spooled_events": self.spool.count(),
                "spooled_observations": self.profiler.pending(),
                **self._monitor_status(),
            }
            heartbeat(
                self.client,
                enforcer_id=self.status.enforcer_id or "",
                bundle_version=current.version if current else None,
                detail=detail,
            )
        except (ConsoleError, BundleError) as exc:
            if self.status.console_reachable or self.status.last_error is None:
                self.say(f"console away, deciding from the cached bundle: {exc}")
            self.status.console_reachable = False
            self.status.last_error = str(exc)
            return False
        self.status.console_reachable = True
        self.status.last_error = None
        self.status.last_sync = self.clock()
        return True

    def flush_events(self) -> int:
        """Upload the spool in batches; how many events the console answered for."""
        eid = self.status.enforcer_id
        result = self.spool.upload(
            lambda batch: upload_events(self.client, batch, enforcer_id=eid).answered
        )
        return result.confirmed

    def start(self) -> None:
        """Sync once now, then in the background every `poll_interval` (or when woken)."""
        self.sync()
        self._thread = threading.Thread(target=self._loop, name="enforcer-sync", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            if not self._stop.is_set():
                self.sync()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self.monitor is not None:
            self.monitor.stop()  # its last events reach the spool before it closes
        for thread in (self._thread, self._reaper):
            if thread is not None:
                thread.join(timeout=30)
        self.profiler.stop()
        self.spool.close()

    def record(self, event: dict[str, Any]) -> None:
        """Spool one event and wake the upload loop."""
        self.spool.append(event)
        self._wake.set()

    # -- runtime monitor ------------------------------------------------------------------

    def start_monitor(
        self,
        *,
        podman: Sequence[str] | None = ("podman",),
        budget: float = 0.25,
        reap_interval: float = 2.0,
    ) -> bool:
        """Start deciding execs; watch the containers `podman` (command and global options; None:
        none) runs now. False, said once and recorded as an alert, when fanotify is unavailable."""
        monitor = Monitor(
            lambda: self.bundle,
            self.record,
            host=self.hostname,
            budget=budget,
            clock=self.clock,
            profile_for=self.profile_for,
            on_exec=self.profiler.on_exec,
        )
        try:
            monitor.start(probe=str(self.state.root))
        except (EnforcerError, OSError, AttributeError) as exc:
            monitor.stop()
            self._alert(
                "monitor_unavailable", f"runtime monitor unavailable, execs are not watched: {exc}"
            )
            return False
        self.monitor = monitor
        self.profiler.start()
        if podman:
            self._watch_running(podman)
        self._reaper = threading.Thread(
            target=self._reap_loop, args=(reap_interval,), name="monitor-reaper", daemon=True
        )
        self._reaper.start()
        self.say(f"runtime monitor watching {len(monitor.containers)} running container(s)")
        return True

    def _watch_running(self, podman: Sequence[str]) -> None:
        try:
            documents = inspect_documents(podman)
        except EnforcerError as exc:
            self.say(f"running containers not watched: {exc}")
            return
        for doc in documents:
            try:
                container = watched_from_inspect(doc)
            except EnforcerError as exc:
                self.say(f"running container not watched: {exc}")
                continue
            self.watch(container, facts_from_inspect(doc) if isinstance(doc, dict) else None)

    def profile_for(self, container: WatchedContainer) -> ImageProfile | None:
        """The runtime profile of the container's image repository (none while the container is
        being profiled: it is teaching that profile)."""
        bundle = self.bundle
        if bundle is None or not container.image_ref:
            return None
        if self.profiler.profiled(container.container_id):
            return None
        return bundle.profile_for(repository_of(container.image_ref))

    def watch(self, container: WatchedContainer, facts: ContainerFacts | None = None) -> bool:
        """Decide the container's execs from now on (no-op without a monitor); `facts` (its
        environment and volumes) tell the profiler whether and what to record."""
        monitor = self.monitor
        if monitor is None:
            return False
        # Before the monitor sees it: its first exec already knows whether it is profiled.
        self.profiler.track(container, facts or ContainerFacts())
        try:
            monitor.watch(container)
        except (EnforcerError, OSError) as exc:
            self.profiler.exited(container.container_id)
            message = f"container {container.container_id[:12]} not watched: {exc}"
            self._alert("monitor_watch_failed", message, container=container)
            return False
        self.say(f"watching container {container.container_id[:12]} ({container.image_ref})")
        return True

    def _reap_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.reap()

    def reap(self) -> list[str]:
        """Unwatch the containers that stopped; their ids."""
        monitor = self.monitor
        if monitor is None:
            return []
        gone = [c.container_id for c in monitor.containers if not container_alive(c)]
        for cid in gone:
            monitor.unwatch(cid)
            self.profiler.exited(cid)
            self.say(f"container {cid[:12]} stopped: no longer watched")
        return gone

    def _monitor_status(self) -> dict[str, Any]:
        monitor = self.monitor
        if monitor is None:
            return {"monitor": {"running": False}}
        stats = monitor.stats
        return {
            "monitor": {
                "running": monitor.running,
                "failed": monitor.failed,
                "containers": len(monitor.containers),
                "execs": stats.execs,
                "denied": stats.denied,
                "fail_mode_answers": stats.fail_mode_answers,
            }
        }

    def _alert(
        self, action: str, message: str, *, container: WatchedContainer | None = None
    ) -> None:
        self.say(message)
        bundle = self.bundle
        self.record(
            {
                "occurred_at": self.clock().isoformat(),
                "source": "monitor",
                "level": "error",
                "action": action,
                "message": message,
                "host": self.hostname,
                "enforcer_group": bundle.group.name if bundle else None,
                "container_id": container.container_id if container else None,
                "image": container.image_ref if container else None,
                "image_id": container.image_id if container else None,
            }
        )

    # -- decisions ------------------------------------------------------------------------

    def decide(self, request: ContainerRequest, *, source: str, record: bool = True) -> Outcome:
        """Decide one container start from the current bundle and spool its events."""
        bundle = self.bundle
        if bundle is None:
            return Outcome(
                allowed=True, message="allowed without a decision (fail-open): no policy bundle yet"
            )
        request = _with_group(request, bundle.group.name, self.hostname)
        state = bundle.image_state(
            image_id=request.image_id,
            manifest_digest=request.manifest_digest,
            image_ref=request.image_ref,
        )
        now = self.clock()
        decision = decide(
            request,
            bundle.policies,
            state,
            group_mode=bundle.group.mode,
            now=now,
            services=bundle.services,
        )
        if record:
            for event in events_for(decision, request, source=source, bundle=bundle, now=now):
                self.spool.append(event)
            self._wake.set()
        warnings = tuple(f"DETECT: {v.describe()}" for v in decision.detections)
        return Outcome(
            allowed=decision.allowed, message=decision.message, warnings=warnings, decision=decision
        )

    def undecidable(self, reason: str) -> Outcome:
        """A request that cannot be decided (malformed): the group's fail mode answers."""
        bundle = self.bundle
        closed = bundle is not None and bundle.group.fail_mode is FailMode.CLOSED
        if closed:
            return Outcome(
                allowed=False, message=f"refused without a decision (fail-closed): {reason}"
            )
        return Outcome(allowed=True, message=f"allowed without a decision (fail-open): {reason}")


def _with_group(request: ContainerRequest, group: str, host: str) -> ContainerRequest:
    return replace(request, enforcer_group=group, host=request.host or host)
