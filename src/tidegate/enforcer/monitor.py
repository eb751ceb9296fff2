"""The runtime monitor: every exec inside a watched container is decided before it happens.

Owns: `WatchedContainer` (a running container's overlay dirs and identity, from `podman
inspect`), `Monitor` (one fanotify group with a filesystem mark per container root; a thread that
answers each FAN_OPEN_EXEC_PERM event), and the monitor's events.

How one exec is decided:
1. The acting pid's /proc/PID/cgroup names the container. A process of no watched container (the
   host, or a container this monitor does not watch) is answered FAN_ALLOW at once: the monitor
   never blocks the host.
2. The file's path comes from the event's descriptor (container-relative); it is in the overlay
   upper layer when UpperDir holds that path; its sha256 is read through the descriptor and kept
   in a cache keyed by (dev, inode, mtime, ctime, size), so a known file costs no read.
3. `core.drift.decide_exec` evaluates the runtime policies in scope (resolved once per container
   and bundle version), the image's executable inventory from the bundle (path -> hash prefix:
   drift when the file is not in it or its hash differs) and the image's profile (`profile_for`);
   FAN_DENY (EPERM) only for a blocking violation. `on_exec` then sees every decided exec of a
   watched container (the profiler records executables through it).

A file not hashed yet is hashed by a worker thread; if no answer is ready within the time budget,
the group's fail mode answers (open: allow, closed: deny) and an alert event says so. Should the
monitor itself fail, its fanotify group is closed (the kernel then allows every pending exec) and
an alert event is recorded. Events and profile observations leave through an outbox thread, so
the spool's writes never sit between an exec and its answer.

Events are shaped as the console's event batch takes them: the decision's fields at the top
level, the exec's own (executable, sha256, upper layer, pid, the calling program and its command
line: the exec has not happened yet, so /proc/PID still shows the caller) under `data`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import select
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tidegate.core.bundle import FailMode, PolicyBundle
from tidegate.core.drift import ExecDecision, ExecRequest, ExecViolation, ImageProfile, decide_exec
from tidegate.core.policy import Mode
from tidegate.core.runtime import ContainerRequest, RuntimePolicy, applicable_policies
from tidegate.enforcer.errors import EnforcerError
from tidegate.enforcer.fanotify import FanotifyEvent, FanotifyGroup, fd_path

__all__ = [
    "ExecObserver",
    "Monitor",
    "MonitorError",
    "MonitorStats",
    "ProfileFn",
    "WatchedContainer",
    "bundle_inventory",
    "container_id_of_cgroup",
    "inspect_documents",
    "inspect_podman",
    "watched_from_inspect",
]

Inventory = Mapping[str, str | None]
InventoryFn = Callable[["WatchedContainer", PolicyBundle], Inventory | None]
ProfileFn = Callable[["WatchedContainer"], ImageProfile | None]
"""The image profile that applies to a container (asked once per container and bundle version,
and again after `Monitor.refresh`)."""
ExecObserver = Callable[["WatchedContainer", ExecRequest, ExecDecision], None]
"""Called (off the decision path) for every exec of a watched container: the profiler's hook."""
Emit = Callable[[dict[str, Any]], None]

_CGROUP_ID = re.compile(r"(?:^|[/-])([0-9a-f]{64})(?:\.scope)?$")
_HASH_CHUNK = 1 << 20
_CACHE_MAX = 16384
_DELETED = " (deleted)"
OBSERVE_INTERVAL = 0.05
"""Seconds between two deliveries of batched exec observations to `on_exec`."""


class MonitorError(EnforcerError):
    """The monitor cannot watch a container (its inspect document or overlay dirs are unusable)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# Containers


@dataclass(frozen=True, slots=True)
class WatchedContainer:
    """A running container the monitor watches: its overlay dirs and identity."""

    container_id: str
    merged_dir: str
    """The overlay mount (its superblock carries the filesystem mark)."""
    upper_dir: str
    """Where files created or changed after start live."""
    name: str = ""
    image_ref: str = ""
    image_id: str | None = None
    """The config digest ("sha256:..."), the key of the image's inventory."""
    labels: tuple[tuple[str, str], ...] = ()
    namespace: str | None = None
    pid: int | None = None
    """The container's init process on the host (gone: the container stopped)."""


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def watched_from_inspect(doc: object) -> WatchedContainer:
    """A `WatchedContainer` from one `podman inspect` document (overlay driver only)."""
    if not isinstance(doc, dict):
        raise MonitorError("podman inspect: expected an object per container")
    cid = doc.get("Id")
    driver = _obj(doc.get("GraphDriver"))
    data = _obj(driver.get("Data"))
    merged, upper = data.get("MergedDir"), data.get("UpperDir")
    if not isinstance(cid, str) or not isinstance(merged, str) or not isinstance(upper, str):
        raise MonitorError(
            f"podman inspect {cid!r}: no overlay MergedDir/UpperDir (driver {driver.get('Name')!r})"
        )
    image = doc.get("Image")
    labels = _obj(_obj(doc.get("Config")).get("Labels"))
    pid = _obj(doc.get("State")).get("Pid")
    image_id = (
        f"sha256:{image.removeprefix('sha256:')}" if isinstance(image, str) and image else None
    )
    return WatchedContainer(
        container_id=cid,
        merged_dir=merged,
        upper_dir=upper,
        name=str(doc.get("Name") or ""),
        image_ref=str(doc.get("ImageName") or ""),
        image_id=image_id,
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
    )


def inspect_podman(podman: Sequence[str], ids: Sequence[str] = ()) -> list[WatchedContainer]:
    """The running containers (or `ids`) of a podman installation, as the monitor watches them.

    `podman` is the command with its global options (`["podman", "--root", ...]`)."""
    return [watched_from_inspect(doc) for doc in inspect_documents(podman, ids)]


def inspect_documents(podman: Sequence[str], ids: Sequence[str] = ()) -> list[Any]:
    """The `podman inspect` documents of the running containers (or `ids`)."""
    try:
        if not ids:
            listed = subprocess.run(
                [*podman, "ps", "--quiet", "--no-trunc"],
                capture_output=True, text=True, check=True, timeout=60,
            )  # fmt: skip
            ids = listed.stdout.split()
        if not ids:
            return []
        out = subprocess.run(
            [*podman, "inspect", "--type", "container", *ids],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        docs = json.loads(out.stdout)
    except subprocess.CalledProcessError as exc:
        raise MonitorError(f"podman inspect failed: {exc.stderr.strip()}") from exc
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise MonitorError(f"podman inspect failed: {exc}") from exc
    if not isinstance(docs, list):
        raise MonitorError("podman inspect: expected a list")
    return docs


def container_id_of_cgroup(text: str) -> str | None:
    """The container a process belongs to, from its /proc/PID/cgroup (podman, docker, CRI-O,
    containerd spell the 64-hex id in the last path component; conmon is not the container)."""
    for line in text.splitlines():
        path = line.rsplit(":", 1)[-1]
        last = path.rstrip("/").rsplit("/", 1)[-1]
        if "conmon" in last:
            continue
        found = _CGROUP_ID.search(last)
        if found:
            return found.group(1)
        if last == "container":  # podman with a nested cgroup: .../libpod-ID/container
            parent = path.rstrip("/").rsplit("/", 2)[-2] if path.count("/") >= 2 else ""
            found = _CGROUP_ID.search(parent)
            if found:
                return found.group(1)
    return None


def _read_text(path: str, limit: int = 65536) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, limit).decode("utf-8", "replace")
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Per-container decision context


@dataclass(frozen=True, slots=True)
class _Context:
    bundle: PolicyBundle
    policies: tuple[RuntimePolicy, ...]
    inventory: Inventory | None
    profile: ImageProfile | None


def bundle_inventory(container: WatchedContainer, bundle: PolicyBundle) -> Inventory | None:
    """The image's executables as the bundle knows them: path -> sha256 prefix (None: the image
    has no inventory in the bundle, drift is then judged by the upper layer alone)."""
    if container.image_id is None:
        return None
    return bundle.images.inventory_of(container.image_id)


@dataclass
class MonitorStats:
    """Counters and decision latencies (seconds, event read -> answer) for health and the bench."""

    execs: int = 0
    host_execs: int = 0
    denied: int = 0
    fail_mode_answers: int = 0
    hashed: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))


@dataclass
class _Pending:
    deadline: float
    started: float
    container: WatchedContainer
    answered: bool = False


class Monitor:
    """One fanotify group deciding every exec in the watched containers."""

    def __init__(
        self,
        bundle: Callable[[], PolicyBundle | None],
        emit: Emit,
        *,
        host: str = "",
        budget: float = 0.25,
        inventory: InventoryFn = bundle_inventory,
        profile_for: ProfileFn | None = None,
        on_exec: ExecObserver | None = None,
        clock: Callable[[], datetime] = _utcnow,
        workers: int = 2,
    ) -> None:
        self._bundle = bundle
        self._emit = emit
        self.host = host
        self.budget = budget
        self._inventory = inventory
        self._profile = profile_for
        self._observer = on_exec
        self._clock = clock
        self.stats = MonitorStats()
        self._group: FanotifyGroup | None = None
        self._containers: dict[str, WatchedContainer] = {}
        # The overlay's st_dev -> its container: an exec's file names its container by the
        # filesystem it is on, and its path says whether the exec came from inside (see
        # _container_on), cheaper than reading and parsing /proc/PID/cgroup for every exec.
        self._by_dev: dict[int, WatchedContainer] = {}
        self._contexts: dict[str, _Context] = {}
        self._hashes: dict[tuple[int, ...], str] = {}
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._outbox: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        # Observations (one per exec) are batched: appended here, drained by the outbox thread
        # every OBSERVE_INTERVAL, so an exec-heavy container does not wake a thread per exec.
        self._observations: deque[tuple[WatchedContainer, ExecRequest, ExecDecision]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="monitor-hash")
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.failed: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, probe: str | None = None) -> None:
        """Open the fanotify group and run. `FanotifyError` when the kernel refuses the group, or
        (with `probe`, a path) an exec permission mark on a file system: a kernel without
        FAN_OPEN_EXEC_PERM or FAN_MARK_FILESYSTEM accepts the group but not the mark."""
        group = FanotifyGroup(nonblocking=True)
        try:
            if probe is not None:
                group.mark_filesystem(probe)
                group.unmark_filesystem(probe)
        except EnforcerError:
            group.close()
            raise
        self._group = group
        for container in list(self._containers.values()):
            self._group.mark_filesystem(container.merged_dir)
        for target, name in ((self._run, "monitor"), (self._drain, "monitor-outbox")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop deciding: the group is closed, so the kernel allows every exec again. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        for thread in self._threads[:1]:
            thread.join(timeout=30)
        self._pool.shutdown(wait=True)
        self._outbox.put(None)
        for thread in self._threads[1:]:
            thread.join(timeout=30)
        self._close_group()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def _close_group(self) -> None:
        with self._lock:
            group, self._group = self._group, None
        if group is not None:
            group.close()  # the kernel allows whatever is still pending

    @property
    def containers(self) -> tuple[WatchedContainer, ...]:
        with self._lock:
            return tuple(self._containers.values())

    @property
    def running(self) -> bool:
        """Deciding execs: started, not stopped, not failed."""
        return self._group is not None and self.failed is None

    def refresh(self, container_id: str | None = None) -> None:
        """Resolve policies and profile again at the next exec (one container, or all): a profile
        started, stopped or changed outside the bundle."""
        with self._lock:
            if container_id is None:
                self._contexts.clear()
            else:
                self._contexts.pop(container_id, None)

    def watch(self, container: WatchedContainer) -> None:
        """Mark the container's root file system; its execs are decided from now on."""
        if not os.path.isdir(container.merged_dir):
            raise MonitorError(
                f"container {container.container_id[:12]}: {container.merged_dir} is not mounted"
            )
        # Its filesystem's owner is set before the mark: a device number is reused once a
        # stopped container's overlay is unmounted, and no event of the new overlay may find
        # the old container (which the reaper forgets a little later).
        dev = os.stat(container.merged_dir).st_dev
        with self._lock:
            self._by_dev[dev] = container
        if self._group is not None:
            try:
                self._group.mark_filesystem(container.merged_dir)
            except BaseException:
                with self._lock:
                    if self._by_dev.get(dev) is container:
                        del self._by_dev[dev]
                raise
        with self._lock:
            self._containers[container.container_id] = container
            self._contexts.pop(container.container_id, None)

    def unwatch(self, container_id: str) -> None:
        """Forget a container (its mark goes with its overlay mount when it stops)."""
        with self._lock:
            container = self._containers.pop(container_id, None)
            self._contexts.pop(container_id, None)
            for dev in [d for d, c in self._by_dev.items() if c.container_id == container_id]:
                del self._by_dev[dev]
        if (
            container is not None
            and self._group is not None
            and os.path.isdir(container.merged_dir)
        ):
            with contextlib.suppress(EnforcerError):  # already gone with the mount
                self._group.unmark_filesystem(container.merged_dir)

    # -- the loop --------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            group = self._group
            assert group is not None
            poller = select.poll()
            poller.register(group.fd, select.POLLIN)
            poller.register(self._wake_r, select.POLLIN)
            while not self._stop.is_set():
                poller.poll(self._poll_timeout_ms())
                for event in group.read():
                    self._handle(group, event)
                self._expire(group)
        except Exception as exc:  # the monitor's failure must leave execs allowed
            self._fail(exc)

    def _poll_timeout_ms(self) -> int:
        with self._lock:
            if not self._pending:
                return 500
            soonest = min(p.deadline for p in self._pending.values())
        return max(0, int((soonest - time.monotonic()) * 1000) + 1)

    def _fail(self, exc: BaseException) -> None:
        self.failed = f"{type(exc).__name__}: {exc}"
        self._close_group()
        self._send(
            self._alert(
                "monitor_failure", f"runtime monitor stopped, execs are allowed: {self.failed}"
            )
        )

    def _handle(self, group: FanotifyGroup, event: FanotifyEvent) -> None:
        started = time.monotonic()
        if event.overflow or event.fd < 0:
            self._send(self._alert("queue_overflow", "fanotify queue overflow: events were lost"))
            return
        try:
            st = os.fstat(event.fd)
            path = fd_path(event.fd)
            container = self._container_on(st.st_dev, path) or self._container_of(event.pid)
            if container is None:
                self.stats.host_execs += 1
                self._answer(group, event.fd, True, started)
                os.close(event.fd)
                return
            self._decide_or_defer(group, event, container, started, st, path)
        except Exception as exc:
            # One exec that cannot be examined (its process vanished...) is allowed and reported.
            self._answer(group, event.fd, True, started)
            os.close(event.fd)
            self._send(
                self._alert("exec_undecided", f"exec by pid {event.pid} allowed undecided: {exc}")
            )

    def _container_on(self, dev: int, path: str) -> WatchedContainer | None:
        """The watched container whose overlay holds the exec'd file, when the exec came from
        inside it; None otherwise (the cgroup decides). The file's path tells: reached through
        the container's mount namespace, whose root is not reachable from ours, it reads
        container-relative; a host process exec'ing the file reads it under the overlay's host
        mount point."""
        container = self._by_dev.get(dev)
        if container is None or path.startswith(container.merged_dir + "/"):
            return None
        return container

    def _container_of(self, pid: int) -> WatchedContainer | None:
        try:
            cid = container_id_of_cgroup(_read_text(f"/proc/{pid}/cgroup"))
        except OSError:
            return None
        return self._containers.get(cid) if cid is not None else None

    def _decide_or_defer(
        self,
        group: FanotifyGroup,
        event: FanotifyEvent,
        container: WatchedContainer,
        started: float,
        st: os.stat_result,
        path: str,
    ) -> None:
        key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        digest = self._hashes.get(key)
        if digest is not None:
            self._finish(group, event, container, digest, started, path)
            os.close(event.fd)
            return
        with self._lock:
            self._pending[event.fd] = _Pending(started + self.budget, started, container)
        self._pool.submit(self._hash_then_finish, group, event, key, path)

    def _hash_then_finish(
        self, group: FanotifyGroup, event: FanotifyEvent, key: tuple[int, ...], path: str
    ) -> None:
        pending = self._pending[event.fd]
        try:
            digest: str | None = _sha256_fd(event.fd)
            self.stats.hashed += 1
            if len(self._hashes) >= _CACHE_MAX:
                self._hashes.clear()
            self._hashes[key] = digest or ""
        except OSError:
            digest = None
        try:
            self._finish(
                group, event, pending.container, digest, pending.started, path, pending=pending
            )
        except Exception as exc:
            self._answer_pending(group, event.fd, pending, True)
            self._send(
                self._alert("exec_undecided", f"exec by pid {event.pid} allowed undecided: {exc}")
            )
        finally:
            with self._lock:
                self._pending.pop(event.fd, None)
            os.close(event.fd)

    def _expire(self, group: FanotifyGroup) -> None:
        now = time.monotonic()
        with self._lock:
            late = [
                (fd, p) for fd, p in self._pending.items() if not p.answered and p.deadline <= now
            ]
        for fd, pending in late:
            bundle = self._bundle()
            allow = bundle is None or bundle.group.fail_mode is FailMode.OPEN
            if self._answer_pending(group, fd, pending, allow):
                self.stats.fail_mode_answers += 1
                verdict = "allowed (fail-open)" if allow else "denied (fail-closed)"
                self._send(self._alert(
                    "decision_timeout",
                    f"exec in container {pending.container.container_id[:12]} {verdict}: "
                    f"no decision within {self.budget * 1000:.0f} ms",
                    container=pending.container,
                ))  # fmt: skip

    def _answer(self, group: FanotifyGroup, fd: int, allow: bool, started: float) -> None:
        group.respond(fd, allow)
        self.stats.execs += 1
        self.stats.latencies.append(time.monotonic() - started)

    def _answer_pending(
        self, group: FanotifyGroup, fd: int, pending: _Pending, allow: bool
    ) -> bool:
        """Answer once: whichever of the worker and the deadline comes first."""
        with self._lock:
            if pending.answered:
                return False
            pending.answered = True
        self._answer(group, fd, allow, pending.started)
        return True

    # -- deciding --------------------------------------------------------------------------

    def _context(self, container: WatchedContainer, bundle: PolicyBundle) -> _Context:
        ctx = self._contexts.get(container.container_id)
        if ctx is not None and ctx.bundle is bundle:
            return ctx
        request = ContainerRequest(
            container_id=container.container_id,
            name=container.name,
            image_ref=container.image_ref,
            image_id=container.image_id,
            host=self.host,
            enforcer_group=bundle.group.name,
            namespace=container.namespace,
            labels=container.labels,
        )
        ctx = _Context(
            bundle=bundle,
            policies=applicable_policies(request, bundle.policies, bundle.services),
            inventory=self._inventory(container, bundle),
            profile=self._profile(container) if self._profile is not None else None,
        )
        self._contexts[container.container_id] = ctx
        return ctx

    def _finish(
        self,
        group: FanotifyGroup,
        event: FanotifyEvent,
        container: WatchedContainer,
        digest: str | None,
        started: float,
        path: str,
        *,
        pending: _Pending | None = None,
    ) -> None:
        bundle = self._bundle()
        if bundle is None:  # nothing to decide from yet: fail-open, as at admission
            self._respond(group, event.fd, True, started, pending)
            return
        request = self._request(event, container, digest or None, path)
        ctx = self._context(container, bundle)
        now = self._clock()
        decision = decide_exec(
            request,
            ctx.inventory,
            ctx.policies,
            group_mode=bundle.group.mode,
            now=now,
            profile=ctx.profile,
        )
        if decision.violations:
            request = _with_parent(request)
        answered = self._respond(group, event.fd, decision.allowed, started, pending)
        if not decision.allowed and answered:
            self.stats.denied += 1
        if decision.violations:
            events = _exec_events(
                request, decision, container, bundle, self.host, now, late=not answered
            )
            self._send(*events)
        if self._observer is not None:
            self._observations.append((container, request, decision))

    def _respond(
        self, group: FanotifyGroup, fd: int, allow: bool, started: float, pending: _Pending | None
    ) -> bool:
        if pending is not None:
            return self._answer_pending(group, fd, pending, allow)
        self._answer(group, fd, allow, started)
        return True

    def _request(
        self, event: FanotifyEvent, container: WatchedContainer, digest: str | None, path: str
    ) -> ExecRequest:
        """`path`: the file's path as /proc/self/fd names it."""
        deleted = path.endswith(_DELETED)
        path = path.removesuffix(_DELETED)
        if path.startswith(container.merged_dir + "/"):
            path = path[len(container.merged_dir) :]
        in_upper = deleted or os.path.lexists(container.upper_dir + path)
        return ExecRequest(
            container_id=container.container_id,
            image_digest=container.image_id,
            path=path,
            sha256=digest,
            in_upper_layer=in_upper,
            pid=event.pid,
            container_name=container.name,
            image_ref=container.image_ref,
        )

    # -- events ----------------------------------------------------------------------------

    def _send(self, *events: dict[str, Any]) -> None:
        emit = self._emit
        for event in events:
            self._outbox.put(lambda e=event: emit(e))  # type: ignore[misc]

    def _drain(self) -> None:
        while True:
            try:
                job = self._outbox.get(timeout=OBSERVE_INTERVAL)
            except queue.Empty:
                job = _observe_only
            self._observe()
            if job is None:
                return
            # A failing sink or observer must not stop the monitor.
            with contextlib.suppress(Exception):
                job()

    def _observe(self) -> None:
        observer = self._observer
        while self._observations:
            watched, request, decision = self._observations.popleft()
            if observer is not None:
                with contextlib.suppress(Exception):
                    observer(watched, request, decision)

    def _alert(
        self, action: str, message: str, *, container: WatchedContainer | None = None
    ) -> dict[str, Any]:
        bundle = self._bundle()
        return {
            "occurred_at": self._clock().isoformat(),
            "source": "monitor",
            "level": "error",
            "action": action,
            "message": message,
            "host": self.host,
            "enforcer_group": bundle.group.name if bundle else None,
            "container_id": container.container_id if container else None,
            "image": container.image_ref if container else None,
            "image_id": container.image_id if container else None,
        }


def _observe_only() -> None:
    """The outbox thread's wake-up without a job: only the observations are drained."""


def _sha256_fd(fd: int) -> str:
    digest, offset = hashlib.sha256(), 0
    while chunk := os.pread(fd, _HASH_CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def _with_parent(request: ExecRequest) -> ExecRequest:
    """Add the calling program (still the process image while the exec waits) and its args."""
    try:
        exe: str | None = os.readlink(f"/proc/{request.pid}/exe")
    except OSError:
        exe = None
    try:
        raw = _read_text(f"/proc/{request.pid}/cmdline", 8192)
        cmdline = tuple(part for part in raw.split("\0") if part)
    except OSError:
        cmdline = ()
    return ExecRequest(
        container_id=request.container_id,
        image_digest=request.image_digest,
        path=request.path,
        sha256=request.sha256,
        in_upper_layer=request.in_upper_layer,
        pid=request.pid,
        parent_exe=exe,
        parent_cmdline=cmdline,
        container_name=request.container_name,
        image_ref=request.image_ref,
    )


def _exec_events(
    request: ExecRequest,
    decision: ExecDecision,
    container: WatchedContainer,
    bundle: PolicyBundle,
    host: str,
    now: datetime,
    *,
    late: bool,
) -> list[dict[str, Any]]:
    """One event per violated control, shaped like the agent's admission events."""
    base = {
        "occurred_at": now.isoformat(),
        "source": "monitor",
        "host": host,
        "enforcer_group": bundle.group.name,
        "container_id": container.container_id,
        "container_name": container.name,
        "namespace": container.namespace,
        "image": container.image_ref,
        "image_id": container.image_id,
        "bundle_version": bundle.version,
        "allowed": decision.allowed,
        "data": {
            "executable": request.path,
            "sha256": request.sha256,
            "in_upper_layer": request.in_upper_layer,
            "pid": request.pid,
            "parent_exe": request.parent_exe,
            "parent_cmdline": list(request.parent_cmdline),
            "notes": list(decision.notes),
            "answered_by_fail_mode": late,
        },
    }
    return [{**base, **_violation_fields(v)} for v in decision.violations]


def _violation_fields(v: ExecViolation) -> dict[str, Any]:
    return {
        "level": "block" if v.blocks else "detect",
        "action": v.decision.action.value,
        "message": v.describe(),
        "policy_id": v.policy_id,
        "policy_name": v.policy_name,
        "policy_version": v.policy_version,
        "control": v.control.value,
        "policy_mode": Mode(v.decision.policy_mode).value,
        "enforcer_mode": Mode(v.decision.point_mode).value,
        "effective_mode": Mode(v.decision.effective_mode).value,
    }
