"""The audit log: who may read it, filters, and keyset pages that stay stable under inserts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tidegate.core.errors import UsageError
from tidegate.core.events import EventCategory, EventCursor, EventLevel
from tidegate.core.roles import Role
from tidegate.services.events import EventFilter, events_query, list_events, record_event
from tidegate.store.db import Database

Headers = Callable[[Role], dict[str, str]]
T0 = datetime(2026, 2, 1, tzinfo=UTC)
READERS = {Role.ADMINISTRATOR, Role.SECURITY_ANALYST, Role.AUDITOR}

# (category, level, image, policy) cycled over the seeded events
KINDS = [
    (EventCategory.IMAGE, EventLevel.INFO, "sha256:aaa", None),
    (EventCategory.POLICY, EventLevel.WARNING, None, "no-critical"),
    (EventCategory.RUNTIME, EventLevel.BLOCK, "sha256:bbb", "default"),
    (EventCategory.RUNTIME, EventLevel.DETECT, "sha256:aaa", "default"),
    (EventCategory.CI, EventLevel.ERROR, "sha256:ccc", "no-critical"),
]


def _seed(database: Database, count: int, start: datetime = T0) -> None:
    """`count` events, two per second (so timestamps tie and the id decides the order)."""
    with database.session() as session:
        for i in range(count):
            category, level, image, policy = KINDS[i % len(KINDS)]
            record_event(
                session,
                category=category,
                level=level,
                action="test.seed",
                message=f"event {i}",
                now=start + timedelta(seconds=i // 2),
                image_digest=image,
                policy=policy,
                data={"i": i},
            )


def _pages(client: TestClient, headers: dict[str, str], **params: Any) -> Iterator[Any]:
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        answer = client.get("/api/v1/events", params=query, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        yield body
        cursor = body["next_cursor"]
        if cursor is None:
            return


@pytest.mark.parametrize("role", list(Role))
def test_reading_events_needs_events_read(
    client: TestClient, headers_for: Headers, role: Role
) -> None:
    answer = client.get("/api/v1/events", headers=headers_for(role))
    if role in READERS:
        assert answer.status_code == 200
    else:
        assert answer.status_code == 403
        assert "permission events:read required" in answer.json()["error"]["message"]


def test_pages_walk_every_event_newest_first_without_repeats(
    client: TestClient, headers_for: Headers, database: Database
) -> None:
    _seed(database, 47)
    pages = list(_pages(client, headers_for(Role.AUDITOR), limit=10))
    assert [len(p["items"]) for p in pages] == [10, 10, 10, 10, 7]
    messages = [e["message"] for p in pages for e in p["items"]]
    assert messages == [f"event {i}" for i in reversed(range(47))]


def test_pages_are_stable_while_events_arrive(
    client: TestClient, headers_for: Headers, database: Database
) -> None:
    _seed(database, 30)
    headers = headers_for(Role.AUDITOR)
    seen: list[int] = []
    cursor = None
    for round_ in range(3):
        params: dict[str, Any] = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/events", params=params, headers=headers).json()
        seen += [e["data"]["i"] for e in body["items"]]
        cursor = body["next_cursor"]
        _seed(database, 5, start=T0 + timedelta(days=1 + round_))  # newer events keep arriving
    assert seen == list(reversed(range(30)))
    assert cursor is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"category": "runtime"}, lambda i: i % 5 in (2, 3)),
        ({"level": "block"}, lambda i: i % 5 == 2),
        ({"image": "sha256:aaa"}, lambda i: i % 5 in (0, 3)),
        ({"policy": "no-critical"}, lambda i: i % 5 in (1, 4)),
        ({"category": "runtime", "image": "sha256:aaa"}, lambda i: i % 5 == 3),
        (
            {"since": (T0 + timedelta(seconds=5)).isoformat()},
            lambda i: i // 2 >= 5,
        ),
        (
            {"until": (T0 + timedelta(seconds=5)).isoformat()},
            lambda i: i // 2 < 5,
        ),
    ],
)
def test_filters_keep_exactly_the_matching_events(
    client: TestClient,
    headers_for: Headers,
    database: Database,
    params: dict[str, str],
    expected: Callable[[int], bool],
) -> None:
    _seed(database, 40)
    pages = _pages(client, headers_for(Role.AUDITOR), limit=3, **params)
    found = [e["data"]["i"] for p in pages for e in p["items"]]
    assert found == [i for i in reversed(range(40)) if expected(i)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"level": "loud"}, "level"),
        ({"category": "misc"}, "category"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-01-01T00:00:00"}, "until"),  # no zone: ambiguous, refused
    ],
)
def test_bad_query_parameters_are_422_naming_them(
    client: TestClient, headers_for: Headers, params: dict[str, Any], field: str
) -> None:
    answer = client.get("/api/v1/events", params=params, headers=headers_for(Role.AUDITOR))
    assert answer.status_code == 422
    assert [d["loc"] for d in answer.json()["detail"]] == [["query", field]]


@pytest.mark.parametrize("cursor", ["garbage!", "bm90IGpzb24", "WzEsMl0", "WyIyMDI2LTAxLTAxIiwxXQ"])
def test_a_damaged_cursor_is_400_naming_it(
    client: TestClient, headers_for: Headers, cursor: str
) -> None:
    answer = client.get(
        "/api/v1/events", params={"cursor": cursor}, headers=headers_for(Role.AUDITOR)
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("cursor:")


def test_cursor_round_trips_and_is_opaque() -> None:
    cursor = EventCursor(ts=T0 + timedelta(microseconds=123), id=42)
    encoded = cursor.encode()
    assert "=" not in encoded
    assert "2026" not in encoded
    assert EventCursor.decode(encoded) == cursor
    with pytest.raises(UsageError, match="cursor"):
        EventCursor.decode(encoded[:-3])


def test_service_listing_orders_ties_by_id_and_caps_the_page(database: Database) -> None:
    _seed(database, 4)  # events 0,1 share a second, and 2,3
    with database.session() as session:
        page = list_events(session, limit=3)
        assert [e.message for e in page.items] == ["event 3", "event 2", "event 1"]
        assert page.next_cursor == EventCursor(ts=page.items[-1].ts, id=page.items[-1].id)
        rest = list_events(session, after=page.next_cursor, limit=3)
        assert [e.message for e in rest.items] == ["event 0"]
        assert rest.next_cursor is None
        assert page.items[0].data == {"i": 3}
        assert page.items[0].ts.tzinfo is not None


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (EventFilter(), "ix_events_ts_id"),
        (EventFilter(category=EventCategory.ADMIN), "ix_events_category_ts_id"),
        (EventFilter(level=EventLevel.BLOCK), "ix_events_level_ts_id"),
        (EventFilter(image_digest="sha256:aaa"), "ix_events_image_digest_ts_id"),
        (EventFilter(policy="p"), "ix_events_policy_ts_id"),
    ],
)
def test_each_filter_pages_through_its_index(
    database: Database, filters: EventFilter, index: str
) -> None:
    """The plan of a deep page is an index range scan: no sort, no full scan, no OFFSET."""
    query = events_query(filters, EventCursor(ts=T0, id=10), 100)
    compiled = query.compile(database.engine)
    with database.engine.connect() as connection:
        if database.dialect == "sqlite":
            rows = connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params.values())
            ).all()
            plan = " ".join(str(r[-1]) for r in rows)
            assert f"USING INDEX {index}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
        else:
            # An empty table makes any plan cheapest: rule out the scans that cannot keep order.
            connection.execute(text("SET enable_seqscan = off"))
            connection.execute(text("SET enable_bitmapscan = off"))
            rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).all()
            plan = " ".join(r[0] for r in rows)
            assert f"Index Scan Backward using {index}" in plan, plan
            assert "Sort" not in plan, plan
