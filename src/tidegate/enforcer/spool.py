"""The on-disk event spool: every decision's event is written here first, then uploaded.

An event gets its idempotency key when it is spooled, and keeps it through every retry, every
enforcer restart and every console outage; the console ignores a key it already has. An event
leaves the spool only when the console has answered for its key (accepted, or already had it),
so nothing is lost (a crash before the answer re-sends it) and nothing is doubled (the re-sent
key is a duplicate at the console). SQLite in WAL mode makes each append durable on its own.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tidegate.enforcer.errors import StateDirError

__all__ = ["Spool", "SpooledEvent", "UploadResult"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
)
"""


@dataclass(frozen=True, slots=True)
class SpooledEvent:
    """One event waiting for the console."""

    key: str
    """Its idempotency key, fixed when it was spooled."""
    body: dict[str, Any]
    """The event as the console's batch endpoint takes it (the key included)."""


@dataclass(frozen=True, slots=True)
class UploadResult:
    """What one `Spool.upload` did."""

    sent: int
    """Events offered to the console."""
    confirmed: int
    """Events the console answered for (accepted or duplicate), now gone from the spool."""


class Spool:
    """A SQLite file of pending events, shared by the decision threads and the uploader."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise StateDirError(f"cannot open the event spool {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(self, body: Mapping[str, Any], *, key: str | None = None) -> str:
        """Spool one event; its idempotency key (a new UUID unless given)."""
        key = key or uuid.uuid4().hex
        record = {**body, "idempotency_key": key}
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO events (idempotency_key, body) VALUES (?, ?)",
                (key, json.dumps(record, sort_keys=True)),
            )
        return key

    def pending(self, limit: int = 500) -> list[SpooledEvent]:
        """The oldest `limit` events, in the order they were spooled."""
        with self._lock:
            rows = self._db.execute(
                "SELECT idempotency_key, body FROM events ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [SpooledEvent(str(key), json.loads(body)) for key, body in rows]

    def count(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM events").fetchone()
        return int(n)

    def confirm(self, keys: Iterable[str]) -> int:
        """Drop the events the console answered for; how many were dropped."""
        keys = list(keys)
        with self._lock:
            self._db.execute("BEGIN")
            before = self._db.total_changes
            self._db.executemany(
                "DELETE FROM events WHERE idempotency_key = ?", [(k,) for k in keys]
            )
            self._db.execute("COMMIT")
            return self._db.total_changes - before

    def upload(
        self, send: Callable[[list[dict[str, Any]]], Iterable[str]], *, batch: int = 500
    ) -> UploadResult:
        """Offer pending events to `send` in batches until the spool is empty or `send` raises.

        `send` posts one batch and returns the keys the console answered for; an error from it
        (console away) propagates after the batches already confirmed are dropped.
        """
        sent = confirmed = 0
        while events := self.pending(batch):
            with self._lock:
                self._db.executemany(
                    "UPDATE events SET attempts = attempts + 1 WHERE idempotency_key = ?",
                    [(e.key,) for e in events],
                )
            sent += len(events)
            answered = set(send([e.body for e in events]))
            confirmed += self.confirm(k for k in answered if k in {e.key for e in events})
            if not answered:
                break  # the console took nothing: try again on the next round, not in a loop
        return UploadResult(sent=sent, confirmed=confirmed)
