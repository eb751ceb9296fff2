"""Recording audit events and paging through them.

`record_event` adds an event to the caller's session (`record_events` many at once, with one
statement), so it commits (or rolls back) together with
the change it describes. `list_events` pages newest first with a keyset on `(ts, id)`: each page
is one index range scan whatever its depth (no OFFSET, no COUNT), and a page boundary is stable
while new events arrive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, insert, select, tuple_
from sqlalchemy.orm import Session

from tidegate.core.events import Event, EventCategory, EventCursor, EventLevel
from tidegate.store.event_tables import EventRow

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What a listing keeps; None means no condition. `since` is inclusive, `until` exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    category: EventCategory | None = None
    level: EventLevel | None = None
    image_digest: str | None = None
    policy: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Event]
    next_cursor: EventCursor | None
    """Where the next page starts; None when this page is the last."""


def event_values(
    *,
    category: EventCategory,
    level: EventLevel,
    action: str,
    message: str,
    now: datetime,
    actor: str | None = None,
    image_digest: str | None = None,
    policy: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The column values of one event's row: what `record_event` stores, for writers that
    insert many events with one statement (`record_events`)."""
    return {
        "ts": now, "category": str(category), "level": str(level), "action": action,
        "message": message, "actor": actor, "image_digest": image_digest, "policy": policy,
        "data": dict(data or {}),
    }  # fmt: skip


def record_event(
    session: Session,
    *,
    category: EventCategory,
    level: EventLevel,
    action: str,
    message: str,
    now: datetime,
    actor: str | None = None,
    image_digest: str | None = None,
    policy: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> int:
    """Add one event to the session's transaction; return its id."""
    row = EventRow(**event_values(
        category=category, level=level, action=action, message=message, now=now, actor=actor,
        image_digest=image_digest, policy=policy, data=data,
    ))  # fmt: skip
    session.add(row)
    session.flush()
    return row.id


def record_events(executor: Session | Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add many events (`event_values`) to the transaction of a session or connection, with
    one cached INSERT statement and no ORM object per event."""
    if rows:
        executor.execute(insert(cast(Table, EventRow.__table__)), list(rows))


def events_query(filters: EventFilter, after: EventCursor | None, limit: int) -> Select[Any]:
    """The one SELECT behind a page: filters, keyset condition, newest first, `limit` rows."""
    query = select(EventRow)
    if filters.since is not None:
        query = query.where(EventRow.ts >= filters.since)
    if filters.until is not None:
        query = query.where(EventRow.ts < filters.until)
    for column, value in (
        (EventRow.category, filters.category),
        (EventRow.level, filters.level),
        (EventRow.image_digest, filters.image_digest),
        (EventRow.policy, filters.policy),
    ):
        if value is not None:
            query = query.where(column == str(value))
    if after is not None:
        # A row-value comparison lets both SQLite and PostgreSQL seek the (.., ts, id) index.
        query = query.where(tuple_(EventRow.ts, EventRow.id) < tuple_(after.ts, after.id))
    return query.order_by(EventRow.ts.desc(), EventRow.id.desc()).limit(limit)


def list_events(
    session: Session,
    *,
    filters: EventFilter | None = None,
    after: EventCursor | None = None,
    limit: int = 100,
) -> Page:
    """One page of events, newest first, strictly older than `after` when it is given."""
    limit = max(1, min(limit, MAX_PAGE))
    # One row more than asked says whether a next page exists, without counting.
    rows = session.scalars(events_query(filters or EventFilter(), after, limit + 1)).all()
    items = [to_event(row) for row in rows[:limit]]
    more = len(rows) > limit
    next_cursor = EventCursor(ts=items[-1].ts, id=items[-1].id) if more and items else None
    return Page(items=items, next_cursor=next_cursor)


def to_event(row: EventRow) -> Event:
    return Event(
        id=row.id,
        ts=row.ts,
        category=EventCategory(row.category),
        level=EventLevel(row.level),
        action=row.action,
        message=row.message,
        actor=row.actor,
        image_digest=row.image_digest,
        policy=row.policy,
        data=row.data,
    )
