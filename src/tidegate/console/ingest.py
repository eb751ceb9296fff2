"""The console's webhook ingester: a background thread that ingests recorded webhook deliveries
(services.deliveries) as soon as the webhook records one.

The webhook endpoint only records a delivery; `wakeup(database).set()` after its commit wakes
the ingester of this process, which drains every pending delivery in batches, then waits for the
next wake-up or `interval` seconds, whichever comes first: the periodic pass, and the
scheduler's own pass, pick up deliveries recorded while no ingester ran (a restart) or by a
replica that went away. Wake-ups are per `Database` object, which the app's routes and its
background work share; several replicas on PostgreSQL each ingest their own deliveries, and the
claims (`FOR UPDATE SKIP LOCKED`) keep two from ingesting the same one.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from tidegate.core.errors import TidegateError
from tidegate.services import deliveries
from tidegate.store.db import Database

__all__ = ["DeliveryIngester", "wakeup"]

_log = logging.getLogger("tidegate.console.ingest")

_wakeups: weakref.WeakKeyDictionary[Database, threading.Event] = weakref.WeakKeyDictionary()
_wakeups_lock = threading.Lock()


def wakeup(database: Database) -> threading.Event:
    """The event that wakes the ingester of `database` in this process (set it after a commit)."""
    with _wakeups_lock:
        event = _wakeups.get(database)
        if event is None:
            event = _wakeups[database] = threading.Event()
        return event


@dataclass
class DeliveryIngester:
    """Drains pending deliveries when woken, and every `interval` seconds regardless."""

    database: Database
    clock: Callable[[], datetime]
    interval: float
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        wake = wakeup(self.database)
        while not self.stop.is_set():
            # Cleared before draining: a delivery recorded meanwhile sets it again, and the
            # wait below returns at once instead of leaving that delivery for the next interval.
            wake.clear()
            self.drain()
            wake.wait(self.interval)

    def drain(self) -> deliveries.IngestSummary | None:
        try:
            summary = deliveries.ingest_pending(self.database, clock=self.clock)
        except TidegateError as exc:
            _log.error("webhook ingester: %s", exc)
            return None
        except Exception:  # the loop outlives any one failure (a bug, a schema not there yet)
            _log.exception("webhook ingester: unexpected error")
            return None
        if summary.failed:
            _log.error("webhook ingester: %d delivery(ies) failed for good", summary.failed)
        return summary

    def close(self) -> None:
        """Stop the loop (it finishes the batch in hand)."""
        self.stop.set()
        wakeup(self.database).set()
