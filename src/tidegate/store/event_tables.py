"""The audit event table and the indexes that make keyset pages fast at millions of rows.

Every listing orders by `(ts DESC, id DESC)`; each filter the API offers has an index that starts
with the filtered column and ends with `(ts, id)`, so a filtered page is one index range scan.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tidegate.store.base import Base, BigIntId


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    ts: Mapped[datetime]
    category: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(128))
    image_digest: Mapped[str | None] = mapped_column(String(128))
    policy: Mapped[str | None] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]

    __table_args__ = (
        Index("ix_events_ts_id", "ts", "id"),
        Index("ix_events_category_ts_id", "category", "ts", "id"),
        Index("ix_events_level_ts_id", "level", "ts", "id"),
        Index("ix_events_image_digest_ts_id", "image_digest", "ts", "id"),
        Index("ix_events_policy_ts_id", "policy", "ts", "id"),
    )
