"""Scan workers: claim a job, pull and scan the image, heartbeat while scanning, post the result
or the failure. One loop (`Worker`) over a `JobSource`: `ApiJobSource` talks to a console over
HTTP (`tidegate scanner`); the console's embedded workers plug in a source that calls the
services directly (console/scheduler.py).

A worker that loses its lease (it was too slow to heartbeat, the console took the job back)
stops heartbeating and drops its result: the job belongs to another worker now. Failures that no
retry can fix (the reference names nothing, it cannot be parsed) are posted as permanent, so the
job is dead-lettered at once instead of being retried.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tidegate.client.base import ConsoleClient
from tidegate.core.errors import (
    ConsoleApiError,
    ImageNotFoundError,
    ReferenceError_,
    TidegateError,
    UsageError,
)

__all__ = [
    "ApiJobSource",
    "Job",
    "JobSource",
    "LeaseLostError",
    "ScanFn",
    "Worker",
    "image_scanner",
    "is_permanent",
    "worker_name",
]

_log = logging.getLogger("tidegate.scanner")


class LeaseLostError(TidegateError):
    """The job's lease is no longer this worker's: the console gave the job to another."""


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed scan job, as a worker sees it."""

    id: int
    reference: str
    digest: str | None
    registry_name: str | None
    attempt: int
    lease_seconds: float
    pull: dict[str, Any] | None = None
    """username, password, token, insecure, ca_pem of the job's registry (None: anonymous)."""
    db_snapshot: str | None = None
    """The console's vulnerability DB snapshot."""

    @property
    def pull_reference(self) -> str:
        """host/repo[:tag]@digest when the digest is known (a moved tag does not change what is
        scanned), without a transport prefix (a scanned image's reference may carry one)."""
        reference = self.reference.removeprefix("docker://")
        if not self.digest or "@" in reference:
            return reference
        return f"{reference}@{self.digest}"


class JobSource(Protocol):
    """Where a worker gets jobs and reports them; raises LeaseLostError when the lease is gone."""

    def claim(self, worker: str) -> Job | None: ...

    def heartbeat(self, job: Job, worker: str) -> None: ...

    def complete(self, job: Job, worker: str, document: dict[str, Any]) -> None: ...

    def fail(self, job: Job, worker: str, error: str, *, permanent: bool) -> None: ...


ScanFn = Callable[[Job], dict[str, Any]]
"""Pull, scan and match one job's image; the `tidegate scan -f json` document."""


def worker_name(index: int = 0) -> str:
    """host:pid:index, unique across the fleet while the process lives."""
    return f"{socket.gethostname()}:{os.getpid()}:{index}"


def is_permanent(exc: BaseException) -> bool:
    """Failures that a retry cannot fix: the reference is malformed or names nothing."""
    return isinstance(exc, ImageNotFoundError | ReferenceError_ | UsageError)


# --- the HTTP source ---------------------------------------------------------------------------


class ApiJobSource:
    """Jobs of a console over its API (permission `scan-jobs`)."""

    def __init__(self, client: ConsoleClient, *, lease_seconds: float | None = None) -> None:
        self._client = client
        self._lease = lease_seconds

    def _lease_body(self) -> dict[str, Any]:
        return {"lease_seconds": self._lease} if self._lease else {}

    def claim(self, worker: str) -> Job | None:
        body = self._client.request(
            "POST", "/scan-jobs/claim", json={"worker": worker, **self._lease_body()}
        )
        if body is None:
            return None
        return Job(
            id=int(body["id"]),
            reference=str(body["reference"]),
            digest=body.get("digest"),
            registry_name=body.get("registry_name"),
            attempt=int(body["attempt"]),
            lease_seconds=float(body["lease_seconds"]),
            pull=body.get("pull"),
            db_snapshot=body.get("db_snapshot"),
        )

    def _post(self, job: Job, action: str, body: dict[str, Any]) -> None:
        try:
            self._client.request("POST", f"/scan-jobs/{job.id}/{action}", json=body)
        except ConsoleApiError as exc:
            if exc.status == 409:
                raise LeaseLostError(str(exc)) from exc
            raise

    def heartbeat(self, job: Job, worker: str) -> None:
        self._post(job, "heartbeat", {"worker": worker, **self._lease_body()})

    def complete(self, job: Job, worker: str, document: dict[str, Any]) -> None:
        self._post(job, "result", {"worker": worker, "scan": document})

    def fail(self, job: Job, worker: str, error: str, *, permanent: bool) -> None:
        self._post(job, "fail", {"worker": worker, "error": error, "permanent": permanent})


# --- scanning ----------------------------------------------------------------------------------


def _loopback(reference: str) -> bool:
    """Whether the reference's registry is on this host: like Docker, plain http is allowed
    there without configuration (local test and mirror registries)."""
    host = reference.split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def _source_options(job: Job) -> Iterator[Any]:
    from tidegate.image import SourceOptions

    pull = job.pull or {}
    ca_pem = pull.get("ca_pem")
    with tempfile.TemporaryDirectory(prefix="tidegate-ca-") as tmp:
        ca_file = None
        if ca_pem:
            ca_file = str(Path(tmp) / "ca.pem")
            Path(ca_file).write_text(str(ca_pem), encoding="utf-8")
        yield SourceOptions(
            username=pull.get("username"),
            password=pull.get("password"),
            token=pull.get("token"),
            ca_file=ca_file,
            insecure=bool(pull.get("insecure")) or _loopback(job.pull_reference),
        )


def image_scanner(*, vulndb_path: Path | None, cache_dir: Path | None = None) -> ScanFn:
    """Pull with the job's pull options, catalogue, match against the DB at `vulndb_path`
    (skipped when None or absent), and build the report document."""

    def scan(job: Job) -> dict[str, Any]:
        from tidegate.image import open_image
        from tidegate.report.interface import ReportOptions
        from tidegate.report.json_doc import build_document
        from tidegate.scan import LayerCache, scan_image
        from tidegate.scan.match import match_result
        from tidegate.vulndb import VulnStore

        cache = LayerCache(cache_dir) if cache_dir is not None else None
        with _source_options(job) as options:
            source = open_image(f"docker://{job.pull_reference}", options)
            try:
                result = scan_image(source, cache=cache)
            finally:
                source.close()
        if vulndb_path is not None and vulndb_path.exists():
            with VulnStore.open(vulndb_path) as store:
                result = match_result(result, store, store.snapshot_id())
        document: dict[str, Any] = build_document(result, ReportOptions()).model_dump(mode="json")
        return document

    return scan


# --- the loop ----------------------------------------------------------------------------------


@dataclass
class Worker:
    """Claims and runs jobs until `stop` is set; finishes the job in hand first."""

    source: JobSource
    scan: ScanFn
    name: str
    stop: threading.Event = field(default_factory=threading.Event)
    poll_interval: float = 1.0
    """Seconds to wait when the queue is idle (or the console unreachable)."""
    hold_seconds: float = 0.0
    """Test hook: seconds to wait (heartbeating) between scan and post, so a test can kill a
    worker mid-job. Zero in production."""
    done: int = 0
    failed: int = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                worked = self.run_one()
            except TidegateError as exc:  # the console is down or refused: wait and try again
                _log.warning("worker %s: %s", self.name, exc)
                worked = False
            except Exception:  # the loop outlives any one failure (a bug, a schema not there)
                _log.exception("worker %s: unexpected error", self.name)
                worked = False
            if not worked:
                self.stop.wait(self.poll_interval)

    def run_one(self) -> bool:
        """Claim and run one job; False when none was due."""
        job = self.source.claim(self.name)
        if job is None:
            return False
        lost = threading.Event()
        beating = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(job, lost, beating), name=f"heartbeat-{job.id}"
        )
        beat.start()
        try:
            self._execute(job, lost)
        finally:
            beating.set()
            beat.join()
        return True

    def _execute(self, job: Job, lost: threading.Event) -> None:
        try:
            document = self.scan(job)
        except TidegateError as exc:
            self._report_failure(job, lost, f"{exc.__class__.__name__}: {exc}", is_permanent(exc))
            return
        except Exception as exc:  # a bug in an analyzer must not kill the worker
            _log.exception("worker %s: job %s crashed", self.name, job.id)
            self._report_failure(job, lost, f"internal error: {exc.__class__.__name__}", False)
            return
        if self.hold_seconds:
            self.stop.wait(self.hold_seconds)
        if lost.is_set():
            return
        try:
            self.source.complete(job, self.name, document)
            self.done += 1
        except LeaseLostError as exc:
            _log.warning("worker %s: job %s: %s", self.name, job.id, exc)

    def _report_failure(self, job: Job, lost: threading.Event, error: str, permanent: bool) -> None:
        self.failed += 1
        if lost.is_set():
            return
        with contextlib.suppress(LeaseLostError):
            self.source.fail(job, self.name, error, permanent=permanent)

    def _heartbeat(self, job: Job, lost: threading.Event, beating: threading.Event) -> None:
        # Three beats per lease: one lost request does not cost the lease.
        every = max(0.05, job.lease_seconds / 3)
        while not beating.wait(every):
            try:
                self.source.heartbeat(job, self.name)
            except LeaseLostError as exc:
                _log.warning("worker %s: job %s: %s", self.name, job.id, exc)
                lost.set()
                return
            except TidegateError as exc:
                _log.warning("worker %s: heartbeat of job %s failed: %s", self.name, job.id, exc)
