"""The scan job queue on SQLite and PostgreSQL: one open job per image, claims and leases,
heartbeats, retries with exponential backoff when a worker fails or dies, dead letters with the
reason, late results of a worker that lost its lease refused, and the API over it all."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from console.inventory_data import scan_document
from helpers.clock import FakeClock
from jobs.conftest import PlaceImage
from tidegate.core.roles import Role
from tidegate.services import images, jobs
from tidegate.store.db import ConflictError, Database
from tidegate.store.inventory import ImageRow, ScanResultRow
from tidegate.store.jobs import JobState

Headers = Callable[[Role], dict[str, str]]
LEASE = 60.0


def _state(database: Database, job_id: int) -> tuple[str, int, str | None]:
    with database.session() as session:
        job = jobs.get_job(session, job_id=job_id)
        return job.state, job.attempts, job.last_error


def test_the_same_image_queued_twice_is_one_job(
    database: Database, clock: FakeClock, place_image: PlaceImage
) -> None:
    image_id, job_id = place_image(1)
    with database.session() as session:
        again = jobs.enqueue_scan(
            session, image_id=image_id, reference="x/y:1", registry=None, now=clock(), reason="2nd"
        )
        _, needs = images.register_reference(
            session, reference="127.0.0.1:1/team/app-1:1", actor="tests", now=clock()
        )
        assert again is None
        assert needs
        assert jobs.queue_counts(session)["queued"] == 1
    # Once done, the image may be queued again (a re-scan).
    with database.session() as session:
        claimed = jobs.claim(session, worker="w", now=clock(), lease_seconds=LEASE)
        assert claimed is not None
        assert claimed.id == job_id
        jobs.complete(
            session, job_id=job_id, worker="w", scan_document=scan_document(1), now=clock()
        )
    with database.session() as session:
        rescan = jobs.enqueue_scan(
            session, image_id=image_id, reference="x/y:1", registry=None, now=clock(), reason="r"
        )
        assert rescan is not None
        assert rescan != job_id


def test_claim_order_priority_then_due_time_and_none_when_idle(
    database: Database, clock: FakeClock, place_image: PlaceImage
) -> None:
    ids = [place_image(n) for n in range(3)]
    with database.session() as session:
        low = jobs.get_job(session, job_id=ids[2][1])
        low.priority = 5
    claimed = []
    for _ in range(4):
        with database.session() as session:
            job = jobs.claim(session, worker="w", now=clock(), lease_seconds=LEASE)
            claimed.append(job.id if job else None)
    assert claimed == [ids[2][1], ids[0][1], ids[1][1], None]


@pytest.mark.parametrize(
    ("how", "max_attempts", "want_state", "want_delay"),
    [
        ("fail", 3, JobState.FAILED, timedelta(seconds=30)),
        ("lease expires", 3, JobState.FAILED, timedelta(seconds=30)),
        ("fail", 1, JobState.DEAD, None),
        ("lease expires", 1, JobState.DEAD, None),
        ("permanent", 3, JobState.DEAD, None),
    ],
)
def test_a_failed_attempt_is_retried_with_backoff_or_dead_lettered(
    database: Database,
    clock: FakeClock,
    place_image: PlaceImage,
    how: str,
    max_attempts: int,
    want_state: JobState,
    want_delay: timedelta | None,
) -> None:
    image_id, job_id = place_image(1)
    with database.session() as session:
        jobs.get_job(session, job_id=job_id).max_attempts = max_attempts
    with database.session() as session:
        assert jobs.claim(session, worker="w1", now=clock(), lease_seconds=LEASE) is not None
    with database.session() as session:
        if how == "lease expires":
            clock.advance(timedelta(seconds=LEASE + 1))
            assert jobs.reclaim_expired(session, now=clock()) == [job_id]
        else:
            jobs.fail(
                session,
                job_id=job_id,
                worker="w1",
                error="registry said 500",
                now=clock(),
                permanent=how == "permanent",
            )
    with database.session() as session:
        job = jobs.get_job(session, job_id=job_id)
        image = session.get(ImageRow, image_id)
        assert image is not None
        assert job.state == want_state
        assert job.lease_owner is None
        reason = "w1" if how == "lease expires" else "registry said 500"
        assert job.last_error is not None
        assert reason in job.last_error
        if want_delay is not None:
            assert job.next_attempt_at == clock() + want_delay
            assert jobs.claim(session, worker="w2", now=clock(), lease_seconds=LEASE) is None
        else:
            assert image.status == "failed"
            assert reason in image.status_reason
            assert job.finished == clock()


def test_backoff_doubles_until_the_last_attempt_then_dead(
    database: Database, clock: FakeClock, place_image: PlaceImage
) -> None:
    _, job_id = place_image(1)
    delays = []
    for attempt in range(1, 4):
        with database.session() as session:
            claimed = jobs.claim(session, worker=f"w{attempt}", now=clock(), lease_seconds=LEASE)
            assert claimed is not None
            assert claimed.attempt == attempt
            job = jobs.fail(
                session, job_id=job_id, worker=f"w{attempt}", error=f"boom {attempt}", now=clock()
            )
            delays.append(job.next_attempt_at - clock() if job.state == "failed" else None)
            clock.set(job.next_attempt_at)
    assert delays == [timedelta(seconds=30), timedelta(seconds=60), None]
    assert _state(database, job_id) == ("dead", 3, "boom 3")
    assert jobs.retry_delay(20) == jobs.MAX_BACKOFF


def test_heartbeat_keeps_the_lease_and_a_lost_lease_refuses_late_work(
    database: Database, clock: FakeClock, place_image: PlaceImage
) -> None:
    image_id, job_id = place_image(1)
    with database.session() as session:
        jobs.claim(session, worker="w1", now=clock(), lease_seconds=LEASE)
    for _ in range(3):  # beats every 40 s: the 60 s lease never expires
        clock.advance(timedelta(seconds=40))
        with database.session() as session:
            jobs.heartbeat(session, job_id=job_id, worker="w1", now=clock(), lease_seconds=LEASE)
            assert jobs.reclaim_expired(session, now=clock()) == []
    clock.advance(timedelta(seconds=LEASE + 1))  # w1 hangs: its lease expires
    with database.session() as session:
        assert jobs.reclaim_expired(session, now=clock()) == [job_id]
    clock.advance(jobs.DEFAULT_BACKOFF)
    with database.session() as session:
        again = jobs.claim(session, worker="w2", now=clock(), lease_seconds=LEASE)
        assert again is not None
        assert again.attempt == 2
    for late in (
        lambda s: jobs.heartbeat(s, job_id=job_id, worker="w1", now=clock(), lease_seconds=1),
        lambda s: jobs.complete(
            s, job_id=job_id, worker="w1", scan_document=scan_document(1), now=clock()
        ),
        lambda s: jobs.fail(s, job_id=job_id, worker="w1", error="late", now=clock()),
    ):
        with pytest.raises(ConflictError, match="does not hold its lease"), database.session() as s:
            late(s)
    with database.session() as session:
        jobs.complete(
            session, job_id=job_id, worker="w2", scan_document=scan_document(1), now=clock()
        )
    with database.session() as session:
        job = jobs.get_job(session, job_id=job_id)
        results = session.query(ScanResultRow).filter_by(image_id=image_id).count()
        assert (job.state, job.attempts, results) == ("done", 2, 1)
        assert job.scan_id is not None


def test_scheduler_lease_is_held_by_one_replica_at_a_time(
    database: Database, clock: FakeClock
) -> None:
    def take(holder: str) -> bool:
        with database.session() as session:
            return jobs.acquire_lease(
                session, name="scheduler", holder=holder, now=clock(), seconds=30
            )

    assert take("a")
    assert not take("b")
    assert take("a")
    clock.advance(timedelta(seconds=31))
    assert take("b")
    assert not take("a")
    with database.session() as session:
        jobs.release_lease(session, name="scheduler", holder="b")
    assert take("a")


# --- the API -----------------------------------------------------------------------------------


def test_workers_claim_heartbeat_and_post_over_the_api(
    client: TestClient, headers_for: Headers, clock: FakeClock, place_image: PlaceImage
) -> None:
    image_id, job_id = place_image(1)
    scanner = headers_for(Role.SCANNER)
    claim = client.post("/api/v1/scan-jobs/claim", json={"worker": "h:1:0"}, headers=scanner)
    assert claim.status_code == 200, claim.text
    body = claim.json()
    assert (body["id"], body["image_id"], body["attempt"]) == (job_id, image_id, 1)
    assert body["reference"] == "127.0.0.1:1/team/app-1:1"
    assert body["worker"] == "token:test-scanner/h:1:0"
    idle = client.post("/api/v1/scan-jobs/claim", json={"worker": "h:1:1"}, headers=scanner)
    assert idle.status_code == 204
    beat = client.post(
        f"/api/v1/scan-jobs/{job_id}/heartbeat", json={"worker": "h:1:0"}, headers=scanner
    )
    assert beat.status_code == 200, beat.text
    other = client.post(
        f"/api/v1/scan-jobs/{job_id}/result",
        json={"worker": "h:1:1", "scan": scan_document(1)},
        headers=scanner,
    )
    assert other.status_code == 409
    assert "lease" in other.json()["error"]["message"]
    done = client.post(
        f"/api/v1/scan-jobs/{job_id}/result",
        json={"worker": "h:1:0", "scan": scan_document(1)},
        headers=scanner,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] in ("approved", "disallowed")
    listed = client.get(
        "/api/v1/scan-jobs", params={"state": "done"}, headers=headers_for(Role.AUDITOR)
    ).json()
    assert [j["id"] for j in listed["jobs"]] == [job_id]
    assert listed["counts"]["done"] == 1
    assert listed["counts"]["queued"] == 0


def test_failures_and_dead_letters_are_visible_through_the_api(
    client: TestClient, headers_for: Headers, place_image: PlaceImage
) -> None:
    _, job_id = place_image(1)
    scanner = headers_for(Role.SCANNER)
    client.post("/api/v1/scan-jobs/claim", json={"worker": "w"}, headers=scanner)
    answer = client.post(
        f"/api/v1/scan-jobs/{job_id}/fail",
        json={"worker": "w", "error": "manifest unknown", "permanent": True},
        headers=scanner,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "dead"
    reader = headers_for(Role.AUDITOR)
    dead = client.get("/api/v1/scan-jobs", params={"state": "dead"}, headers=reader).json()
    assert dead["jobs"][0]["last_error"] == "manifest unknown"
    one = client.get(f"/api/v1/scan-jobs/{job_id}", headers=reader).json()
    assert one["state"] == "dead"
    assert one["attempts"] == 1
    events = client.get("/api/v1/events", params={"category": "scan"}, headers=reader).json()
    assert events["items"][0]["action"] == "scan.failed"
    assert "manifest unknown" in events["items"][0]["message"]


@pytest.mark.parametrize(
    ("role", "method", "path", "body", "status"),
    [
        (Role.AUDITOR, "post", "/api/v1/scan-jobs/claim", {"worker": "w"}, 403),
        (Role.CI, "post", "/api/v1/scan-jobs/claim", {"worker": "w"}, 403),
        (Role.ENFORCER, "get", "/api/v1/scan-jobs", None, 200),
        (Role.SCANNER, "post", "/api/v1/scan-jobs/claim", {"worker": "bad name!"}, 422),
        (Role.SCANNER, "post", "/api/v1/scan-jobs/claim", {"worker": "w", "x": 1}, 422),
        (Role.SCANNER, "post", "/api/v1/scan-jobs/99/heartbeat", {"worker": "w"}, 404),
        (Role.SCANNER, "post", "/api/v1/scan-jobs/99/result", {"worker": "w"}, 422),
        (Role.AUDITOR, "get", "/api/v1/scan-jobs?state=sleeping", None, 422),
    ],
)
def test_permissions_and_bad_bodies(
    client: TestClient,
    headers_for: Headers,
    role: Role,
    method: str,
    path: str,
    body: dict[str, object] | None,
    status: int,
) -> None:
    kwargs = {"json": body} if body is not None else {}
    answer = getattr(client, method)(path, headers=headers_for(role), **kwargs)
    assert answer.status_code == status, answer.text


def test_no_token_is_401(client: TestClient) -> None:
    answer = client.post("/api/v1/scan-jobs/claim", json={"worker": "w"})
    assert answer.status_code == 401
