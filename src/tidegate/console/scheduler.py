"""The console's background work: embedded scan workers, and the scheduler.

`BackgroundWork(state)` is started and stopped by the app's lifespan:
- `Settings.embedded_workers` threads run `client.jobs.Worker` over a `DatabaseJobSource` (the
  services called in-process, no HTTP), scanning with the console's own vulnerability DB;
- the scheduler runs on ONE replica at a time, the holder of the `scheduler` lease (renewed each
  tick, given up on shutdown). Each tick, in its own transaction per step: take back the jobs of
  dead workers, record acknowledgement expiries, apply due `enforce_after` dates, run the
  registries' due scheduled pulls, ingest webhook deliveries left pending (a safety net: every
  console process runs a `DeliveryIngester`, console/ingest.py, woken by its webhook), and, each
  `rescan_interval` or as soon as the vulnerability DB snapshot changes, re-match stored scans
  (no pull) and queue re-scans of images read by other analyzers. A failing step is logged and
  the next one runs.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tidegate.client.jobs import Job, LeaseLostError, ScanFn, Worker, image_scanner, worker_name
from tidegate.console.ingest import DeliveryIngester
from tidegate.console.settings import Settings
from tidegate.core.errors import TidegateError
from tidegate.services import deliveries, jobs, registries, rescan
from tidegate.services.acks import expire_acknowledgements
from tidegate.services.assurance import apply_due_enforcement
from tidegate.services.profiles import StopResult, stop_due_sessions
from tidegate.store.db import ConflictError, Database

__all__ = ["SCHEDULER_LEASE", "BackgroundWork", "DatabaseJobSource", "Scheduler"]

_log = logging.getLogger("tidegate.console.scheduler")

SCHEDULER_LEASE = "scheduler"


@dataclass
class DatabaseJobSource:
    """The job queue of this console's database, for its embedded workers."""

    database: Database
    settings: Settings
    clock: Callable[[], datetime]

    def claim(self, worker: str) -> Job | None:
        lease = self.settings.job_lease_seconds
        with self.database.session() as session:
            claimed = jobs.claim(
                session,
                worker=worker,
                now=self.clock(),
                lease_seconds=lease,
                encryption_key=self.settings.encryption_secret,
            )
        if claimed is None:
            return None
        return Job(
            id=claimed.id,
            reference=claimed.reference,
            digest=claimed.digest,
            registry_name=claimed.registry_name,
            attempt=claimed.attempt,
            lease_seconds=lease,
            pull=claimed.pull,
            db_snapshot=rescan.vulndb_snapshot(self.settings.vulndb_path),
        )

    def heartbeat(self, job: Job, worker: str) -> None:
        try:
            with self.database.session() as session:
                jobs.heartbeat(
                    session,
                    job_id=job.id,
                    worker=worker,
                    now=self.clock(),
                    lease_seconds=self.settings.job_lease_seconds,
                )
        except ConflictError as exc:
            raise LeaseLostError(str(exc)) from exc

    def complete(self, job: Job, worker: str, document: dict[str, Any]) -> None:
        try:
            with self.database.session() as session:
                jobs.complete(
                    session, job_id=job.id, worker=worker, scan_document=document, now=self.clock()
                )
        except ConflictError as exc:
            raise LeaseLostError(str(exc)) from exc

    def fail(self, job: Job, worker: str, error: str, *, permanent: bool) -> None:
        try:
            with self.database.session() as session:
                jobs.fail(
                    session,
                    job_id=job.id,
                    worker=worker,
                    error=error,
                    now=self.clock(),
                    permanent=permanent,
                    backoff=self.settings.job_retry_backoff,
                )
        except ConflictError as exc:
            raise LeaseLostError(str(exc)) from exc


@dataclass
class Scheduler:
    """One tick of the console's periodic work, on the replica holding the lease."""

    database: Database
    settings: Settings
    clock: Callable[[], datetime]
    holder: str = field(default_factory=lambda: f"{worker_name()}:{uuid.uuid4().hex[:8]}")
    _last_rescan: datetime | None = None
    _last_snapshot: str | None = None

    def holds_lease(self) -> bool:
        with self.database.session() as session:
            return jobs.acquire_lease(
                session,
                name=SCHEDULER_LEASE,
                holder=self.holder,
                now=self.clock(),
                seconds=self.settings.scheduler_lease_seconds,
            )

    def release(self) -> None:
        with self.database.session() as session:
            jobs.release_lease(session, name=SCHEDULER_LEASE, holder=self.holder)

    def tick(self) -> bool:
        """Run the due work if this replica holds (or takes) the lease; whether it did."""
        if not self.holds_lease():
            return False
        steps = (
            self.reclaim,
            self.expiries,
            self.due_pulls,
            self.due_profilers,
            self.pending_deliveries,
            self.rescans,
        )
        for step in steps:
            try:
                step()
            except TidegateError as exc:
                _log.error("scheduler step %s failed: %s", step.__name__, exc)
            except Exception:
                _log.exception("scheduler step %s crashed (a bug)", step.__name__)
        return True

    def reclaim(self) -> list[int]:
        with self.database.session() as session:
            return jobs.reclaim_expired(
                session, now=self.clock(), backoff=self.settings.job_retry_backoff
            )

    def expiries(self) -> None:
        with self.database.session() as session:
            expire_acknowledgements(session, now=self.clock())
        with self.database.session() as session:
            apply_due_enforcement(session, now=self.clock())

    def due_pulls(self) -> list[Any]:
        runs: list[Any] = registries.run_due_pulls(
            self.database, now=self.clock(), key=self.settings.encryption_secret
        )
        return runs

    def due_profilers(self) -> list[StopResult]:
        """The automatic profiler's sessions whose time is up: stopped, applied in audit mode."""
        return stop_due_sessions(self.database, now=self.clock())

    def pending_deliveries(self) -> deliveries.IngestSummary:
        return deliveries.ingest_pending(self.database, clock=self.clock)

    def rescans(self) -> rescan.RescanSummary | None:
        now = self.clock()
        snapshot = rescan.vulndb_snapshot(self.settings.vulndb_path)
        due = self._last_rescan is None or now - self._last_rescan >= self.settings.rescan_interval
        if not due and snapshot == self._last_snapshot:
            return None
        with self.database.session() as session:
            summary = rescan.run_rescans(
                session,
                vulndb_path=self.settings.vulndb_path,
                now=now,
                max_attempts=self.settings.job_max_attempts,
            )
        self._last_rescan, self._last_snapshot = now, snapshot
        if summary.rematched or summary.queued:
            _log.info(
                "re-scan: %d image(s) re-matched against %s, %d re-scan(s) queued",
                summary.rematched,
                summary.snapshot,
                len(summary.queued),
            )
        return summary


@dataclass
class BackgroundWork:
    """The threads of one console process: its embedded workers and its scheduler loop."""

    database: Callable[[], Database]
    settings: Settings
    clock: Callable[[], datetime]
    scan: ScanFn | None = None
    """How embedded workers scan (default: pull + the console's DB); tests pass their own."""
    stop: threading.Event = field(default_factory=threading.Event)
    workers: list[Worker] = field(default_factory=list)
    scheduler: Scheduler | None = None
    ingester: DeliveryIngester | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        database = self.database()
        if self.settings.embedded_workers:
            scan = self.scan or image_scanner(
                vulndb_path=self.settings.vulndb_path,
                cache_dir=self.settings.data_dir / "layer-cache",
            )
            source = DatabaseJobSource(database, self.settings, self.clock)
            for index in range(self.settings.embedded_workers):
                worker = Worker(source, scan, name=f"embedded:{worker_name(index)}", stop=self.stop)
                self.workers.append(worker)
                self._spawn(worker.run, f"scan-worker-{index}")
        self.ingester = DeliveryIngester(
            database, self.clock, self.settings.scheduler_interval, stop=self.stop
        )
        self._spawn(self.ingester.run, "webhook-ingester")
        if self.settings.scheduler:
            self.scheduler = Scheduler(database, self.settings, self.clock)
            self._spawn(self._schedule, "scheduler")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _schedule(self) -> None:
        assert self.scheduler is not None
        # The first tick waits one interval: a console starting up serves requests first.
        while not self.stop.wait(self.settings.scheduler_interval):
            try:
                self.scheduler.tick()
            except TidegateError as exc:
                _log.error("scheduler: %s", exc)
            except Exception:  # the loop outlives any one failure (a bug, a schema not there)
                _log.exception("scheduler: unexpected error")

    def close(self, timeout: float = 30.0) -> None:
        """Stop the loops; the workers finish (or drop) the job in hand first."""
        self.stop.set()
        if self.ingester is not None:
            self.ingester.close()
        for thread in self._threads:
            thread.join(timeout)
        if self.scheduler is not None:
            try:
                self.scheduler.release()
            except Exception as exc:  # shutting down: the lease expires on its own anyway
                _log.warning("scheduler: could not release its lease: %s", exc)
