"""The console's webhook ingester: a background thread that ingests recorded webhook deliveries
(services.deliveries) as soon as the webhook records one.

The webhook endpoint only records a delivery; `wakeup(database).set()` after its commit wakes
the ingester of this process, which lets a burst of deliveries finish (the webhook quiet for
`settle`, or `max_delay` at most), drains every pending delivery in batches, then waits for the
next wake-up or `interval` seconds, whichever comes first: the periodic pass, and the
scheduler's own pass, pick up deliveries recorded while no ingester ran (a restart) or by a
replica that went away. Wake-ups are per `Database` object, which the app's routes and its
background work share; several replicas on PostgreSQL each ingest their own deliveries, and the
claims (`FOR UPDATE SKIP LOCKED`) keep two from ingesting the same one.
"""

from __future__ import annotations

import logging
import threading
import time
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
    settle: float = 0.05
    """After a wake-up, how long the webhook must stay quiet before a drain starts..."""
    max_delay: float = 1.0
    """...but a drain starts at most this long after the wake-up, however busy the webhook."""

    def run(self) -> None:
        wake = wakeup(self.database)
        while not self.stop.is_set():
            # Cleared before draining: a delivery recorded meanwhile sets it again, and the
            # wait below returns at once instead of leaving that delivery for the next interval.
            wake.clear()
            self.drain()
            if wake.wait(self.interval):
                self._coalesce(wake)

    def _coalesce(self, wake: threading.Event) -> None:
        """Let a burst of deliveries finish (or run for `max_delay`) before draining it: the
        webhook's requests get the process meanwhile, and the drain takes the burst in full
        batches instead of a few deliveries at a time. A lone push waits `settle`."""
        deadline = time.monotonic() + self.max_delay
        while not self.stop.is_set():
            wake.clear()
            left = deadline - time.monotonic()
            if left <= 0 or not wake.wait(min(self.settle, left)):
                return

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
