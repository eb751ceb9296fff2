"""The webhook's group commit (console/recorder.py, services.deliveries.accept_webhooks), on
SQLite and PostgreSQL: a batch answers each notification in order (recorded, secret refused and
logged, body refused, unknown registry), concurrent requests share a transaction, one request
that breaks its batch fails alone, the writer records what is queued before it stops.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest
from sqlalchemy import select

from helpers.clock import FakeClock
from registries.test_deliveries import SECRET, D, body, hub  # noqa: F401  (fixture by name)
from tidegate.console.ingest import DeliveryIngester
from tidegate.console.recorder import WebhookRecorder
from tidegate.core.errors import ConflictError, DatabaseUnavailableError
from tidegate.services import deliveries, registries
from tidegate.store.db import Database
from tidegate.store.deliveries import WebhookDeliveryRow
from tidegate.store.event_tables import EventRow

GOOD = f"Bearer {SECRET}"


def note(clock: FakeClock, payload: bytes, *, name: str = "hub", auth: str | None = GOOD,
         source: str = "tests") -> deliveries.Notification:  # fmt: skip
    return deliveries.Notification(name, auth, payload, source, clock())


def stored(database: Database) -> list[tuple[int, str]]:
    with database.session() as s:
        rows = s.execute(select(WebhookDeliveryRow.id, WebhookDeliveryRow.source)).all()
    return sorted((r.id, r.source) for r in rows)


def refusals(database: Database) -> list[str]:
    with database.session() as s:
        query = select(EventRow.data).where(EventRow.action == "registry.webhook_refused")
        return sorted(d["reason"] for d in s.scalars(query))


@pytest.mark.usefixtures("hub")
def test_a_batch_answers_each_notification_in_order(database: Database, clock: FakeClock) -> None:
    batch = [
        note(clock, body(("team/app", D[0], "1")), source="a"),
        note(clock, body(("team/app", D[1], "2")), auth="Bearer nope", source="b"),
        note(clock, b"{not json", source="c"),
        note(clock, body(("team/app", D[2], None)), name="ghost", source="d"),
        note(clock, b"{not json", auth=None, source="e"),  # no secret: refused, body unread
        note(clock, body(("team/app", D[3], "4"), ("team/app", D[4], "5")), source="f"),
    ]
    outcomes = deliveries.accept_webhooks(database, batch)
    assert isinstance(outcomes[0], deliveries.Accepted)
    assert outcomes[0].events == 1
    assert outcomes[1] is None
    assert outcomes[3] is None
    assert outcomes[4] is None
    assert isinstance(outcomes[2], registries.WebhookBodyError)
    assert "not JSON" in str(outcomes[2])
    assert outcomes[2].status == 400
    assert isinstance(outcomes[5], deliveries.Accepted)
    assert outcomes[5].events == 2
    assert stored(database) == [(outcomes[0].delivery, "a"), (outcomes[5].delivery, "f")]
    assert refusals(database) == ["no Authorization header", "no such registry", "wrong secret"]


@pytest.mark.usefixtures("hub")
def test_concurrent_requests_share_one_transaction(
    database: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    first_in = threading.Event()
    real = deliveries.accept_webhooks

    def counted(db: Database, notes: Sequence[deliveries.Notification]) -> list[deliveries.Outcome]:
        sizes.append(len(notes))
        if len(sizes) == 1:  # the first batch takes its time: the others queue meanwhile
            first_in.set()
            time.sleep(0.3)
        return real(db, notes)

    monkeypatch.setattr(deliveries, "accept_webhooks", counted)
    recorder = WebhookRecorder(database)

    async def burst() -> list[deliveries.Outcome]:
        first = asyncio.create_task(recorder.accept(note(clock, body(("a/b", D[0], "0")))))
        await asyncio.to_thread(first_in.wait, 10)
        rest = [recorder.accept(note(clock, body(("a/b", D[1], f"t{n}")))) for n in range(20)]
        return [await first, *await asyncio.gather(*rest)]

    try:
        outcomes = asyncio.run(burst())
    finally:
        recorder.close()
    assert sizes == [1, 20]
    ids = [o.delivery for o in outcomes if isinstance(o, deliveries.Accepted)]
    assert len(ids) == 21
    assert ids == sorted(ids)
    assert [i for i, _ in stored(database)] == ids


@pytest.mark.usefixtures("hub")
def test_a_request_that_breaks_its_batch_fails_alone(
    database: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = deliveries.accept_webhooks
    gate = threading.Event()

    def poisoned(
        db: Database, notes: Sequence[deliveries.Notification]
    ) -> list[deliveries.Outcome]:
        gate.wait(10)
        if any(n.source == "poison" for n in notes):
            raise ConflictError("conflicting change: the registry went away")
        return real(db, notes)

    monkeypatch.setattr(deliveries, "accept_webhooks", poisoned)
    recorder = WebhookRecorder(database)

    async def burst() -> list[deliveries.Outcome | BaseException]:
        calls = [
            recorder.accept(note(clock, body(("a/b", D[n], "x")), source=source))
            for n, source in enumerate(["ok1", "poison", "ok2"])
        ]
        tasks = [asyncio.create_task(c) for c in calls]
        await asyncio.sleep(0.2)  # all three queued behind the gate: one batch
        gate.set()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    try:
        first, broken, last = asyncio.run(burst())
    finally:
        recorder.close()
    assert isinstance(broken, ConflictError)
    assert isinstance(first, deliveries.Accepted)
    assert isinstance(last, deliveries.Accepted)
    assert [s for _, s in stored(database)] == ["ok1", "ok2"]


@pytest.mark.usefixtures("hub")
def test_the_writer_records_what_is_queued_before_it_stops(
    database: Database, clock: FakeClock
) -> None:
    recorder = WebhookRecorder(database)

    async def some() -> list[deliveries.Outcome]:
        calls = [recorder.accept(note(clock, body(("a/b", D[n], "x")))) for n in range(5)]
        tasks = [asyncio.create_task(c) for c in calls]
        await asyncio.sleep(0)  # queued
        await asyncio.to_thread(recorder.close)
        return list(await asyncio.gather(*tasks))

    outcomes = asyncio.run(some())
    assert all(isinstance(o, deliveries.Accepted) for o in outcomes)
    assert len(stored(database)) == 5

    async def late() -> deliveries.Outcome:
        return await recorder.accept(note(clock, body(("a/b", D[0], "y"))))

    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(late())


def test_the_ingester_lets_a_burst_finish_before_it_drains(database: Database) -> None:
    ingester = DeliveryIngester(database, FakeClock(), interval=60, settle=0.05, max_delay=0.6)
    wake = threading.Event()
    # A lone delivery: drained once the webhook was quiet for `settle`.
    started = time.monotonic()
    ingester._coalesce(wake)
    assert time.monotonic() - started < 0.5
    # A burst that goes on: drained `max_delay` after it began, not when it ends.
    stop = threading.Event()

    def webhook() -> None:
        while not stop.wait(0.01):
            wake.set()

    burst = threading.Thread(target=webhook)
    burst.start()
    try:
        started = time.monotonic()
        ingester._coalesce(wake)
        waited = time.monotonic() - started
    finally:
        stop.set()
        burst.join()
    assert 0.5 <= waited < 3


@pytest.mark.usefixtures("hub")
def test_a_database_that_is_down_fails_the_whole_batch_at_once(
    database: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    gate = threading.Event()

    def down(db: Database, notes: Sequence[deliveries.Notification]) -> list[deliveries.Outcome]:
        gate.wait(10)
        calls.append(len(notes))
        raise DatabaseUnavailableError("database sqlite:///x: unable to open database file")

    monkeypatch.setattr(deliveries, "accept_webhooks", down)
    recorder = WebhookRecorder(database)

    async def burst() -> list[deliveries.Outcome | BaseException]:
        tasks = [
            asyncio.create_task(recorder.accept(note(clock, body(("a/b", D[n], "x")))))
            for n in range(4)
        ]
        await asyncio.sleep(0.2)  # queued behind the gate: one batch (or the first alone)
        gate.set()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    try:
        outcomes = asyncio.run(burst())
    finally:
        recorder.close()
    assert all(isinstance(o, DatabaseUnavailableError) for o in outcomes)
    assert sum(calls) == 4  # each request tried once: a batch is not retried one by one
    assert max(calls) > 1


@pytest.mark.usefixtures("hub")
def test_a_batch_is_stored_whole_or_not_at_all(
    database: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The refusal's audit event cannot be written (a NOT NULL column left empty): the delivery
    # accepted in the same batch is not stored either, so a retry cannot record it twice.
    real = registries.webhook_refusal
    monkeypatch.setattr(registries, "webhook_refusal", lambda **kw: {**real(**kw), "message": None})
    batch = [note(clock, body(("team/app", D[0], "1"))), note(clock, b"{}", auth="Bearer no")]
    with pytest.raises(ConflictError):
        deliveries.accept_webhooks(database, batch)
    assert stored(database) == []
    assert refusals(database) == []
