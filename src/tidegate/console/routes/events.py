"""The audit log: `GET /events`, filtered, newest first, paged by an opaque cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from tidegate.console.deps import Principal, SessionDep, require
from tidegate.console.schemas.common import ERROR_RESPONSES
from tidegate.console.schemas.events import EventPage, EventPublic
from tidegate.core.events import EventCategory, EventCursor, EventLevel
from tidegate.core.roles import Permission
from tidegate.services.events import MAX_PAGE, EventFilter, list_events

router = APIRouter(prefix="/events", tags=["events"], responses={**ERROR_RESPONSES})
Reader = Annotated[Principal, Depends(require(Permission.EVENTS_READ))]


@router.get("", response_model=EventPage, responses={400: {"description": "a damaged cursor"}})
def get_events(
    _reader: Reader,
    session: SessionDep,
    since: Annotated[AwareDatetime | None, Query(description="inclusive")] = None,
    until: Annotated[AwareDatetime | None, Query(description="exclusive")] = None,
    category: EventCategory | None = None,
    level: EventLevel | None = None,
    image: Annotated[str | None, Query(max_length=128, description="image digest")] = None,
    policy: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> EventPage:
    """Events newest first; pass `next_cursor` back as `cursor` for the next page."""
    page = list_events(
        session,
        filters=EventFilter(
            since=since,
            until=until,
            category=category,
            level=level,
            image_digest=image,
            policy=policy,
        ),
        after=EventCursor.decode(cursor) if cursor else None,
        limit=limit,
    )
    return EventPage(
        items=[EventPublic.model_validate(e) for e in page.items],
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )
