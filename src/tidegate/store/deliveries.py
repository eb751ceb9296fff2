"""The table of recorded webhook deliveries (Alembic revision 0007).

Owns `webhook_deliveries`: one row per accepted push notification of a managed registry — when
it arrived and from where, the push events it carried (already parsed and validated, as JSON),
how many events it ignored, and its ingestion state (pending -> ingested, or failed with the
error). The webhook writes a row with one INSERT and answers; the ingester
(services.deliveries) turns pending rows into images and scan jobs in batches. Two indexes
serve it: claiming reads `(status, id)`, the API lists `(registry_id, id)`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tidegate.store.base import Base, BigIntId, UTCDateTime

_TS = UTCDateTime()


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    """Recorded, not ingested yet."""
    INGESTED = "ingested"
    """Its images are in the inventory and their scans queued."""
    FAILED = "failed"
    """Ingestion failed `MAX_ATTEMPTS` times; `error` says why."""


class WebhookDeliveryRow(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_id", "status", "id"),
        Index("ix_webhook_deliveries_registry_id_id", "registry_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    registry_id: Mapped[int] = mapped_column(
        ForeignKey("managed_registries.id", ondelete="CASCADE")
    )
    received_at: Mapped[datetime] = mapped_column(_TS)
    source: Mapped[str] = mapped_column(String(255))
    """The address the notification came from."""
    events: Mapped[list[Any]] = mapped_column(JSON)
    """The push events: [{"repository": ..., "digest": ..., "tag": ... or null}, ...]."""
    ignored: Mapped[int] = mapped_column(Integer)
    """Events of the body that were not manifest pushes (pulls, blobs, tagless manifests)."""
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Ingestion attempts that ended (in success or a recorded failure)."""
    error: Mapped[str | None] = mapped_column(Text)
    """Why the last attempt failed."""
    ingested_at: Mapped[datetime | None] = mapped_column(_TS)
    new_images: Mapped[int | None] = mapped_column(Integer)
    """Images the delivery added to the inventory (set when ingested)."""
    queued: Mapped[int | None] = mapped_column(Integer)
    """Scan jobs it queued (set when ingested)."""
