"""Audit events as the domain sees them: categories, levels, the stored record and the cursor
that pages through them (newest first, keyset on (ts, id)).

Pure: no I/O. The store keeps events, `services.events` records and lists them.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tidegate.core.errors import UsageError


class EventCategory(StrEnum):
    ADMIN = "admin"
    AUTH = "auth"
    IMAGE = "image"
    POLICY = "policy"
    ACKNOWLEDGEMENT = "acknowledgement"
    SCAN = "scan"
    CI = "ci"
    RUNTIME = "runtime"
    REGISTRY = "registry"


class EventLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    DETECT = "detect"
    """A violation that was allowed because a policy or the point is in audit mode."""
    BLOCK = "block"
    """A violation that was denied (policy and point both enforce)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One stored audit event."""

    id: int
    ts: datetime
    """When it happened (UTC)."""
    category: EventCategory
    level: EventLevel
    action: str
    """What happened, a short dotted verb: `user.create`, `login.failure`, `image.status`..."""
    message: str
    """One human sentence saying what happened and why."""
    actor: str | None = None
    """Who did it: a user name, `token:NAME`, or None for the system itself."""
    image_digest: str | None = None
    policy: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventCursor:
    """Where a page of events ended: the (ts, id) of its last (oldest) item.

    Encoded opaquely for clients; the next page holds the events strictly older than it.
    """

    ts: datetime
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.ts.astimezone(UTC).isoformat(), self.id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> EventCursor:
        """Parse a cursor given back by a client; a damaged one is a UsageError naming it."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            ts_text, event_id = json.loads(raw)
            ts = datetime.fromisoformat(ts_text)
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
            raise UsageError(f"cursor: {text[:40]!r} is not a cursor returned by this API") from exc
        if ts.tzinfo is None or not isinstance(event_id, int) or isinstance(event_id, bool):
            raise UsageError(f"cursor: {text[:40]!r} is not a cursor returned by this API")
        return cls(ts=ts.astimezone(UTC), id=event_id)
