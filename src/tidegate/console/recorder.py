"""The webhook's group commit: one writer thread records the deliveries of every concurrent
webhook request of this process together, in one transaction per burst.

A registry sends a notification per push; a busy registry (or a CI fleet pushing at once) sends
hundreds a second. Recording each in its own transaction costs a commit each (an fsync on
PostgreSQL) and a hop to the thread pool each; here the webhook endpoint, on the event loop,
hands its request to the writer and awaits the outcome, and the writer takes everything queued
meanwhile (up to `max_batch`), authenticates, parses and records it with
`services.deliveries.accept_webhooks`, commits once and answers each request. A lone request
is a batch of one, answered as soon as its commit is done: nothing waits for a batch to fill.
The 202 still comes after the delivery is committed.

A batch that fails as a whole (a registry deleted under it, a constraint) is retried request by
request, so one bad request fails alone; a database that is down fails every request of the
batch at once (no retry each), with the error the endpoint would have raised itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tidegate.console.ingest import wakeup
from tidegate.core.errors import DatabaseUnavailableError, TidegateError
from tidegate.services import deliveries
from tidegate.store.db import Database

__all__ = ["WebhookRecorder"]

_log = logging.getLogger("tidegate.console.recorder")


@dataclass(frozen=True, slots=True)
class _Request:
    note: deliveries.Notification
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[deliveries.Outcome]


_STOP = object()


def _settle(future: asyncio.Future[deliveries.Outcome], outcome: deliveries.Outcome) -> None:
    if not future.done():  # the client may have gone (its request cancelled)
        future.set_result(outcome)


def _fail(future: asyncio.Future[deliveries.Outcome], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)


def _answer(request: _Request, how: Callable[[asyncio.Future[Any], Any], None], what: Any) -> None:
    # A closed event loop (RuntimeError): nobody is waiting for the answer any more.
    with contextlib.suppress(RuntimeError):
        request.loop.call_soon_threadsafe(how, request.future, what)


@dataclass
class WebhookRecorder:
    """Records webhook deliveries for the requests of any event loop of this process."""

    database: Database
    max_batch: int = 256
    _queue: queue.SimpleQueue[_Request | object] = field(default_factory=queue.SimpleQueue)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False

    async def accept(self, note: deliveries.Notification) -> deliveries.Outcome:
        """The outcome of `note` once its batch is committed (or the batch's error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[deliveries.Outcome] = loop.create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the webhook recorder is closed (the console is stopping)")
            if self._thread is None:  # started by the first webhook, not by every app
                self._thread = threading.Thread(
                    target=self._run, name="webhook-recorder", daemon=True
                )
                self._thread.start()
            self._queue.put(_Request(note, loop, future))
        return await future

    def close(self, timeout: float = 30.0) -> None:
        """Record what is queued, then stop the writer."""
        with self._lock:
            self._closed = True
            thread = self._thread
            self._queue.put(_STOP)
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[_Request] = [first]  # type: ignore[list-item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True  # the batch in hand is recorded first
                    break
                batch.append(item)  # type: ignore[arg-type]
            self._record(batch)

    def _record(self, batch: list[_Request]) -> None:
        try:
            outcomes = deliveries.accept_webhooks(self.database, [r.note for r in batch])
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, DatabaseUnavailableError):
                for request in batch:  # one bad request must not fail the others: alone, each
                    self._record([request])
                return
            if not isinstance(exc, TidegateError):
                _log.exception("webhook recorder: unexpected error")
            for request in batch:  # the database is down: each request says so, at once
                _answer(request, _fail, exc)
            return
        for request, outcome in zip(batch, outcomes, strict=True):
            _answer(request, _settle, outcome)
        if any(isinstance(o, deliveries.Accepted) for o in outcomes):
            wakeup(self.database).set()  # after the commit: the ingester must see the rows
