"""Bodies of the audit event listing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from tidegate.console.schemas.common import PublicModel
from tidegate.core.events import EventCategory, EventLevel


class EventPublic(PublicModel):
    id: int
    ts: datetime
    category: EventCategory
    level: EventLevel
    action: str
    actor: str | None
    image_digest: str | None
    policy: str | None
    message: str
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventPublic]
    next_cursor: str | None
    """Pass it back as `cursor` for the next (older) page; null on the last page."""
