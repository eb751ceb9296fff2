"""Recorded webhook deliveries and their ingestion, on SQLite and PostgreSQL: batches dedupe
pushes within and across deliveries (one image and one scan per digest), ingestion is
idempotent, a delivery recorded while no ingester ran is ingested when the console starts (and
by the scheduler's pass), one that cannot be ingested fails alone and keeps its error, and
ingesters of several processes never ingest a delivery twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from helpers.clock import FakeClock
from registries.conftest import KEY, ingested
from tidegate.console.scheduler import Scheduler
from tidegate.console.settings import Settings
from tidegate.core.roles import Role
from tidegate.services import deliveries, registries
from tidegate.services.deliveries import IngestSummary
from tidegate.store.db import Database
from tidegate.store.deliveries import DeliveryStatus, WebhookDeliveryRow
from tidegate.store.event_tables import EventRow
from tidegate.store.inventory import ImageRow, ImageTagRow
from tidegate.store.jobs import ScanJobRow
from tidegate.store.registries import ManagedRegistryRow

SECRET = "delivery-secret-0123456789"
OCI = "application/vnd.oci.image.manifest.v1+json"
D = ["sha256:" + c * 64 for c in "abcdef"]

Headers = Callable[[Role], dict[str, str]]


def body(*pushes: tuple[str, str, str | None]) -> bytes:
    """A Distribution envelope of manifest pushes (repository, digest, tag)."""
    events = [{"action": "push", "target": {"mediaType": OCI, "repository": repo,
                                            "digest": digest, **({"tag": tag} if tag else {})}}
              for repo, digest, tag in pushes]  # fmt: skip
    return json.dumps({"events": events}).encode()


@pytest.fixture
def hub(database: Database, clock: FakeClock) -> str:
    with database.session() as session:
        spec = registries.RegistrySpec(name="hub", url="http://127.0.0.1:5999",
                                       webhook_secret=SECRET)  # fmt: skip
        registries.create_registry(session, spec=spec, key=KEY, actor="tests", now=clock())
    return "127.0.0.1:5999"


def accept(database: Database, now: datetime, payload: bytes) -> int:
    accepted = deliveries.accept_webhook(database, name="hub", authorization=f"Bearer {SECRET}",
                                         body=payload, now=now, source="tests")  # fmt: skip
    assert accepted is not None
    return accepted.delivery


def inventory(database: Database) -> dict[str, Any]:
    with database.session() as s:
        return {
            "images": sorted(s.scalars(select(ImageRow.digest))),
            "tags": sorted(s.scalars(select(ImageTagRow.tag))),
            "jobs": sorted(s.scalars(select(ScanJobRow.digest))),
            "queued_events": s.scalar(
                select(func.count()).where(EventRow.action == "image.queued")
            ),
            "deliveries": {
                d.id: (d.status, d.new_images, d.queued)
                for d in s.scalars(select(WebhookDeliveryRow))
            },
        }


PUSHES = [
    body(("team/app", D[0], "1")),
    body(("team/app", D[0], "1"), ("team/app", D[1], "2")),  # the first push again, and a new one
    body(("team/app", D[0], "latest"), ("other/app", D[0], "1")),  # D0 under two more names
    body(("team/app", D[1], "2")),
]


@pytest.mark.usefixtures("hub")
@pytest.mark.parametrize("batch_size", [1, 2, 50], ids=["one-per-batch", "pairs", "one-batch"])
def test_batches_dedupe_within_and_across_deliveries(
    database: Database, clock: FakeClock, batch_size: int
) -> None:
    ids = [accept(database, clock(), payload) for payload in PUSHES]
    summary = deliveries.ingest_pending(database, clock=clock, batch_size=batch_size)
    assert summary == IngestSummary(ingested=4, new_images=2, queued=2)
    seen = inventory(database)
    assert seen["images"] == [D[0], D[1]]
    assert seen["jobs"] == [D[0], D[1]]  # one scan per digest
    assert seen["tags"] == ["1", "1", "2", "latest"]  # team/app:1, team/app:2, :latest, other/app:1
    assert seen["queued_events"] == 2
    # Each new image and job is counted for the delivery that brought it first.
    assert seen["deliveries"] == {
        ids[0]: ("ingested", 1, 1), ids[1]: ("ingested", 1, 1),
        ids[2]: ("ingested", 0, 0), ids[3]: ("ingested", 0, 0),
    }  # fmt: skip


@pytest.mark.usefixtures("hub")
def test_ingestion_is_idempotent(database: Database, clock: FakeClock) -> None:
    accept(database, clock(), PUSHES[1])
    deliveries.ingest_pending(database, clock=clock)
    before = inventory(database)
    assert deliveries.ingest_pending(database, clock=clock) == IngestSummary()  # nothing pending
    assert inventory(database) == before
    again = accept(database, clock(), PUSHES[1])  # the registry retries the same notification
    assert deliveries.ingest_pending(database, clock=clock) == IngestSummary(ingested=1)
    after = inventory(database)
    assert after["deliveries"][again] == ("ingested", 0, 0)
    assert {k: v for k, v in after.items() if k != "deliveries"} == {
        k: v for k, v in before.items() if k != "deliveries"
    }


@pytest.mark.usefixtures("hub")
def test_recorded_while_no_ingester_ran_is_ingested_at_start(
    database: Database, clock: FakeClock, settings: Settings, app: FastAPI, headers_for: Headers
) -> None:
    delivery = accept(database, clock(), PUSHES[0])  # no console running: stays pending
    assert inventory(database)["deliveries"][delivery] == ("pending", None, None)
    with TestClient(app) as client:  # the ingester's first pass runs at start
        done = ingested(client, headers_for(Role.AUDITOR), {"delivery": delivery})
    assert (done["status"], done["new_images"], done["queued"]) == ("ingested", 1, 1)


@pytest.mark.usefixtures("hub")
def test_the_scheduler_ingests_what_is_left_pending(
    database: Database, clock: FakeClock, settings: Settings
) -> None:
    delivery = accept(database, clock(), PUSHES[0])
    assert Scheduler(database, settings, clock).tick()
    assert inventory(database)["deliveries"][delivery] == ("ingested", 1, 1)


def _broken_delivery(database: Database, clock: FakeClock) -> int:
    """A pending delivery whose stored events cannot be read (as if written by a bug)."""
    with database.session() as s:
        registry_id = s.scalar(
            select(ManagedRegistryRow.id).where(ManagedRegistryRow.name == "hub")
        )
        return int(
            s.execute(
                insert(WebhookDeliveryRow)
                .values(
                    registry_id=registry_id,
                    received_at=clock(),
                    source="tests",
                    events=[{"repository": "team/app"}],
                    ignored=0,
                    status=DeliveryStatus.PENDING.value,
                    attempts=0,
                )
                .returning(WebhookDeliveryRow.id)
            ).scalar_one()
        )


@pytest.mark.usefixtures("hub")
def test_a_failing_delivery_fails_alone_and_keeps_its_error(
    database: Database, clock: FakeClock, client: TestClient, headers_for: Headers
) -> None:
    admin = headers_for(Role.ADMINISTRATOR)
    broken = _broken_delivery(database, clock)
    # The webhook wakes the app's ingester: one batch with both, which fails and is retried
    # delivery by delivery.
    r = client.post("/api/v1/registries/hub/webhook", content=PUSHES[1],
                    headers={"Authorization": SECRET})  # fmt: skip
    assert r.status_code == 202, r.text
    done = ingested(client, admin, r.json())
    failed = ingested(client, admin, {"delivery": broken})
    assert (done["status"], done["new_images"], done["queued"]) == ("ingested", 2, 2)
    assert failed["status"] == "failed"
    assert failed["attempts"] == deliveries.MAX_ATTEMPTS
    assert f"webhook delivery {broken}: a stored event is not a push event" in failed["error"]
    listed = client.get("/api/v1/registries/hub/deliveries?status=failed", headers=admin).json()
    assert [d["id"] for d in listed] == [broken]
    with database.session() as s:
        query = select(EventRow).where(EventRow.action == "registry.webhook_failed")
        event = s.scalars(query).one()
    assert event.data["delivery"] == broken
    # Retried by hand: pending again with its attempts reset (and it fails again).
    retried = client.post(f"/api/v1/registries/hub/deliveries/{broken}/retry", headers=admin)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
    assert ingested(client, admin, {"delivery": broken})["status"] == "failed"
    missing = client.get("/api/v1/registries/hub/deliveries/999999", headers=admin)
    assert missing.status_code == 404


@pytest.mark.usefixtures("hub")
def test_ingesters_of_several_processes_share_the_queue(
    database: Database, clock: FakeClock
) -> None:
    # 40 deliveries, each pushing one of 6 digests under its own tag, plus a shared one:
    # concurrent ingesters on their own engines (as separate console processes would be).
    ids = [
        accept(database, clock(), body(("team/app", D[n % 6], f"t{n}"), ("base/img", D[0], "1")))
        for n in range(40)
    ]
    engines = [Database(database.url) for _ in range(3)]
    results: list[IngestSummary] = []
    errors: list[BaseException] = []

    def run(db: Database) -> None:
        try:
            results.append(deliveries.ingest_pending(db, clock=clock, batch_size=4))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(db,)) for db in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for db in engines:
        db.dispose()
    assert errors == []
    assert sum(r.ingested for r in results) == 40  # each delivery ingested exactly once
    assert sum(r.failed for r in results) == 0
    seen = inventory(database)
    assert seen["images"] == sorted(D)
    assert seen["jobs"] == sorted(D)  # one scan per digest, whoever ingested it
    assert seen["queued_events"] == 6
    assert len(seen["tags"]) == 41
    assert {d: s for d, (s, _, _) in seen["deliveries"].items()} == dict.fromkeys(ids, "ingested")
    assert sum(n for _, n, _ in seen["deliveries"].values()) == 6
