"""Webhook deliveries: accept a registry's push notification (authenticate, parse, record it
with one INSERT), ingest pending deliveries in batches, list them.

Accepting is what the webhook endpoint does, so it does as little as it can: one SELECT of the
registry's secret hash, the body parsed and validated completely in memory, one INSERT of the
parsed push events. A bad secret is refused (and logged), a malformed body refused with nothing
stored. Everything else — images, tags, scan jobs and their audit events — is the ingester's
work (`ingest_pending`), done exactly as a synchronous webhook did it (services.registries), in
batches: the pushes of a batch are deduplicated (the same repository, digest and tag pushed twice
is registered once) and a digest the inventory knows queues no second scan.

Claiming a batch is atomic on both databases, as the scan job queue's claims are: PostgreSQL
locks the chosen rows with `FOR UPDATE SKIP LOCKED` (several console replicas ingest side by
side, never the same delivery), SQLite runs one guarded `UPDATE ... RETURNING` first, so the
batch's transaction holds the write lock from its first statement. A batch that fails (another
replica registered the same new digest a moment earlier, a delivery that cannot be ingested) is
rolled back and its deliveries are retried one by one; a delivery failing `MAX_ATTEMPTS` times is
`failed`, keeps its error and is reported by an audit event.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Insert,
    Row,
    Select,
    Table,
    bindparam,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from tidegate.core.errors import ConflictError, DatabaseUnavailableError, UsageError
from tidegate.core.events import EventCategory, EventLevel
from tidegate.core.policy import ImageStatus
from tidegate.services import jobs, registries
from tidegate.services.events import event_values, record_event, record_events
from tidegate.store.db import Database, NotFoundError
from tidegate.store.deliveries import DeliveryStatus, WebhookDeliveryRow
from tidegate.store.inventory import ImageRow, ImageTagRow, RegistryRow, RepositoryRow
from tidegate.store.registries import ManagedRegistryRow

__all__ = [
    "BATCH_SIZE",
    "MAX_ATTEMPTS",
    "Accepted",
    "IngestSummary",
    "Notification",
    "Outcome",
    "accept_webhook",
    "accept_webhooks",
    "get_delivery",
    "ingest_pending",
    "list_deliveries",
    "record_delivery",
    "retry_delivery",
]

BATCH_SIZE = 50
"""Deliveries per ingestion transaction: large enough to amortize a commit, small enough that
SQLite's one write lock is not held from the webhook for long."""
MAX_ATTEMPTS = 3
MAX_ERROR_CHARS = 2000

_log = logging.getLogger("tidegate.services.deliveries")

_sqlite_writers: weakref.WeakKeyDictionary[Database, threading.Lock] = weakref.WeakKeyDictionary()
_sqlite_writers_lock = threading.Lock()


@contextmanager
def _writing(db: Database) -> Iterator[None]:
    """On SQLite, the writers of this module in this process take turns on a lock: SQLite
    admits one writer at a time anyway, and one waiting in its busy handler sleeps in steps of
    up to 100 ms even when the lock came free long before, so a burst of webhook deliveries
    would mostly sleep. PostgreSQL writers run side by side."""
    if db.dialect != "sqlite":
        yield
        return
    with _sqlite_writers_lock:
        lock = _sqlite_writers.get(db)
        if lock is None:
            lock = _sqlite_writers[db] = threading.Lock()
    with lock:
        yield


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the webhook answers: the recorded delivery, to be ingested."""

    delivery: int
    events: int
    """Push events recorded."""
    ignored: int
    """Events of the body that are not manifest pushes (pulls, blob pushes...)."""


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """What one `ingest_pending` call did."""

    ingested: int = 0
    """Deliveries ingested."""
    failed: int = 0
    """Deliveries that failed for good (MAX_ATTEMPTS reached)."""
    retried: int = 0
    """Failed attempts that will be retried."""
    new_images: int = 0
    queued: int = 0

    def __add__(self, other: IngestSummary) -> IngestSummary:
        return IngestSummary(
            self.ingested + other.ingested,
            self.failed + other.failed,
            self.retried + other.retried,
            self.new_images + other.new_images,
            self.queued + other.queued,
        )


# --- accepting ----------------------------------------------------------------------------


@functools.cache
def _accept_statements() -> tuple[Select[Any], Insert]:
    """The webhook's two statements, built once: constructing a SQLAlchemy statement costs more
    than running it, and these run for every delivery."""
    registry = cast(Table, ManagedRegistryRow.__table__)
    secret = select(registry.c.id, registry.c.webhook_secret_hash).where(
        registry.c.name == bindparam("name")
    )
    table = cast(Table, WebhookDeliveryRow.__table__)
    record = insert(table).returning(table.c.id)
    return secret, record


def record_delivery(
    connection: Connection,
    *,
    registry_id: int,
    events: Sequence[registries.PushEvent],
    ignored: int,
    source: str,
    now: datetime,
) -> int:
    """Record a delivery as pending (one INSERT); its id."""
    values = {
        "registry_id": registry_id, "received_at": now, "source": source[:255],
        "events": [_event_json(e) for e in events], "ignored": ignored,
        "status": DeliveryStatus.PENDING.value, "attempts": 0,
    }  # fmt: skip
    delivery_id: int = connection.execute(_accept_statements()[1], values).scalar_one()
    return delivery_id


@dataclass(frozen=True, slots=True)
class Notification:
    """One webhook request to accept: the registry named in its path, its Authorization
    header, its body (parsed by `accept_webhooks`), the peer it came from, when it came."""

    name: str
    authorization: str | None
    body: bytes
    source: str
    now: datetime


Outcome = Accepted | registries.WebhookBodyError | None
"""What accepting one notification came to: recorded; its body refused (once the secret was
known good: a stranger learns nothing about bodies); or None, its secret refused (logged)."""


def accept_webhook(
    db: Database,
    *,
    name: str,
    authorization: str | None,
    body: bytes,
    now: datetime,
    source: str,
) -> Accepted | None:
    """Authenticate, parse and record one notification; None when the secret is missing or
    wrong (the refusal is logged). A malformed body raises registries.WebhookBodyError (once
    the secret is known good) and stores nothing."""
    outcome = accept_webhooks(db, [Notification(name, authorization, body, source, now)])[0]
    if isinstance(outcome, registries.WebhookBodyError):
        raise outcome
    return outcome


def accept_webhooks(db: Database, notifications: Sequence[Notification]) -> list[Outcome]:
    """Authenticate, parse and record many notifications in one transaction (the webhook's
    group commit: a burst of deliveries costs one commit, not one each); an outcome for each,
    in order. Refusals are logged (audit events) in the same transaction. A database failure
    raises, and then nothing of the batch is stored."""
    parsed: list[tuple[list[registries.PushEvent], int] | registries.WebhookBodyError] = []
    for note in notifications:  # parsed first, outside the transaction: the costly part
        try:
            parsed.append(registries.parse_webhook(note.body))
        except registries.WebhookBodyError as exc:
            parsed.append(exc)
    outcomes: list[Outcome] = []
    refusals: list[dict[str, Any]] = []
    # A connection, not an ORM session: this is the hot path. Deliveries and the audit events
    # of refusals commit together: a batch is stored whole or not at all.
    with _writing(db), _translated(db), db.engine.begin() as connection:
        secrets: dict[str, Row[Any] | None] = {}
        for note, body in zip(notifications, parsed, strict=True):
            if note.name not in secrets:
                secret_query = _accept_statements()[0]
                secrets[note.name] = connection.execute(secret_query, {"name": note.name}).first()
            secret = secrets[note.name]
            if secret is None or not registries.secret_matches(secret.webhook_secret_hash,
                                                               note.authorization):  # fmt: skip
                outcomes.append(None)
                refusals.append(registries.webhook_refusal(
                    name=note.name, registry_known=secret is not None,
                    authorization=note.authorization, now=note.now, source=note.source,
                ))  # fmt: skip
            elif isinstance(body, registries.WebhookBodyError):
                outcomes.append(body)
            else:
                events, ignored = body
                delivery = record_delivery(
                    connection, registry_id=secret.id, events=events, ignored=ignored,
                    source=note.source, now=note.now,
                )  # fmt: skip
                outcomes.append(Accepted(delivery, len(events), ignored))
        record_events(connection, refusals)
    return outcomes


@contextmanager
def _translated(db: Database) -> Iterator[None]:
    """The driver's errors of a connection used directly, as Database.session() raises them."""
    try:
        yield
    except IntegrityError as exc:
        raise ConflictError(f"conflicting change: {exc.orig}") from exc
    except OperationalError as exc:
        raise DatabaseUnavailableError(f"database {db.safe_url}: {exc.orig}") from exc


def _event_json(event: registries.PushEvent) -> dict[str, Any]:
    return {"repository": event.repository, "digest": event.digest, "tag": event.tag}


def _push_events(delivery: int, stored: Iterable[Any]) -> list[registries.PushEvent]:
    try:
        return [registries.PushEvent(e["repository"], e["digest"], e.get("tag")) for e in stored]
    except (KeyError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"webhook delivery {delivery}: a stored event is not a push event "
            f"(repository, digest, tag): {exc!r}"
        ) from exc


# --- ingesting ----------------------------------------------------------------------------


def ingest_pending(
    db: Database,
    *,
    clock: Callable[[], datetime],
    batch_size: int = BATCH_SIZE,
    max_batches: int | None = None,
) -> IngestSummary:
    """Ingest pending deliveries, a batch per transaction, until none is left (or
    `max_batches` ran); what was done."""
    total = IngestSummary()
    batches = 0
    while max_batches is None or batches < max_batches:
        done = _ingest_batch(db, clock(), batch_size)
        if done is None:
            break
        total += done
        batches += 1
    return total


def _ingest_batch(db: Database, now: datetime, size: int) -> IngestSummary | None:
    """One batch in one transaction; None when nothing was pending."""
    claimed: list[int] = []
    try:
        with _writing(db), db.session() as session:
            rows = _claim(session, size)
            claimed = [r.id for r in rows]
            if not rows:
                return None
            return _ingest_rows(session, rows, now)
    except DatabaseUnavailableError:
        raise
    except Exception as exc:
        if not claimed:
            raise
        _log.info("ingest batch of %d deliveries failed (%s): one by one", len(claimed), exc)
    total = IngestSummary()
    for delivery_id in claimed:
        total += _ingest_one(db, delivery_id, now)
    return total


def _claim(session: Session, size: int, delivery_id: int | None = None) -> list[Row[Any]]:
    """Claim up to `size` pending deliveries, oldest first (one, when `delivery_id` is given)."""
    table = WebhookDeliveryRow
    pending = select(table.id).where(table.status == DeliveryStatus.PENDING.value)
    if delivery_id is not None:
        pending = pending.where(table.id == delivery_id)
    pending = pending.order_by(table.id).limit(size)
    if session.get_bind().dialect.name == "postgresql":
        pending = pending.with_for_update(skip_locked=True)
    statement = (
        update(table)
        # The status guard makes SQLite's lost race (a row ingested meanwhile) update nothing.
        .where(table.id.in_(pending.scalar_subquery()), table.status == DeliveryStatus.PENDING)
        .values(attempts=table.attempts + 1)
        .returning(table.id, table.registry_id, table.events, table.attempts)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.execute(statement).all(), key=lambda r: r.id)


def _ingest_rows(session: Session, rows: Sequence[Row[Any]], now: datetime) -> IngestSummary:
    """Register the pushes of the claimed deliveries and mark them ingested."""
    query = select(ManagedRegistryRow).where(
        ManagedRegistryRow.id.in_({r.registry_id for r in rows})
    )
    by_id = {r.id: r for r in session.scalars(query)}
    pushes: list[tuple[int, ManagedRegistryRow, registries.PushEvent]] = []
    seen: set[tuple[int, str, str, str | None]] = set()
    for row in rows:
        for push in _push_events(row.id, row.events):
            key = (row.registry_id, push.repository, push.digest, push.tag)
            if key not in seen:  # the same push twice in a batch is registered once
                seen.add(key)
                pushes.append((row.id, by_id[row.registry_id], push))
    batch = _Batch(session, now, [(r.host, p.repository, p.digest) for _, r, p in pushes])
    with session.no_autoflush:  # written together by finish(), not one by one
        for delivery, registry, push in pushes:
            batch.push(delivery, registry, push)
    new, queued = batch.finish()
    changes = [
        {"delivery": r.id, "status": DeliveryStatus.INGESTED.value, "error": None,
         "ingested_at": now, "new_images": new.get(r.id, 0), "queued": queued.get(r.id, 0)}
        for r in rows
    ]  # fmt: skip
    session.execute(_ingested_statement(), changes)
    return IngestSummary(
        ingested=len(rows), new_images=sum(new.values()), queued=sum(queued.values())
    )


@functools.cache
def _ingested_statement() -> Any:
    """UPDATE of an ingested delivery, in Core: one statement for the batch's rows, without the
    ORM's bulk-update bookkeeping."""
    table = cast(Table, WebhookDeliveryRow.__table__)
    return (
        update(table)
        .where(table.c.id == bindparam("delivery"))
        .values({c: bindparam(c) for c in ("status", "error", "ingested_at", "new_images",
                                            "queued")})
    )  # fmt: skip


@dataclass(slots=True)
class _NewImage:
    """An image a push of the batch made: the row values of its INSERT, its id once inserted."""

    digest: str
    reference: str
    values: dict[str, Any]
    id: int | None = None
    latest_scan_id: None = None


_Image = ImageRow | _NewImage


@dataclass
class _Wanted:
    """A scan to queue: the image, the reference and registry it was pushed by, and the
    delivery it is counted for."""

    image: _Image
    reference: str
    registry: str
    delivery: int


class _Batch:
    """The pushes of one transaction, registered as services.images.register_reference and
    services.registries register a push one at a time (the same images, tags, scan jobs and
    `image.queued` events), in a few statements per batch instead of a dozen per push: one
    SELECT of the known digests, the registries and repositories looked up once, new images,
    tags and events INSERTed together (in Core: no ORM object for what is only written)."""

    def __init__(
        self, session: Session, now: datetime, pushes: Sequence[tuple[str, str, str]]
    ) -> None:
        """`pushes`: (host, repository, digest) of every push the batch will see."""
        self.session, self.now = session, now
        self.images: dict[str, _Image] = dict(
            _known_images(session, {digest for _, _, digest in pushes})
        )
        self.places = _place_ids(session, {(host, repo) for host, repo, _ in pushes}, now)
        self.tags: dict[tuple[int, int, str], None] = {}
        self.created: list[tuple[_NewImage, int, str]] = []
        self.scans: dict[str, _Wanted] = {}

    def push(self, delivery: int, registry: ManagedRegistryRow, push: registries.PushEvent) -> None:
        named = f"{registry.host}/{push.repository}" + (f":{push.tag}" if push.tag else "")
        reference = f"{named}@{push.digest}"
        registry_id, repository_id = self.places[(registry.host, push.repository)]
        image = self.images.get(push.digest)
        if image is None:
            image = _NewImage(push.digest, reference, {
                "digest": push.digest, "manifest_digest": push.digest, "reference": reference,
                "labels": {}, "first_seen": self.now, "last_seen": self.now,
                "status": ImageStatus.UNSCANNED.value,
                "status_reason": f"queued for scanning: {reference}", "retired": False,
                "registry_id": registry_id, "repository_id": repository_id,
            })  # fmt: skip
            self.images[push.digest] = image
            self.created.append((image, delivery, registry.name))
        elif isinstance(image, ImageRow):
            image.last_seen, image.retired = self.now, False  # pushed again: it is live
            if push.tag:
                image.registry_id = image.registry_id or registry_id
                image.repository_id = image.repository_id or repository_id
        if push.tag:
            self.tags[(id(image), repository_id, push.tag)] = None
        if image.latest_scan_id is None and push.digest not in self.scans:
            self.scans[push.digest] = _Wanted(image, image.reference or reference,
                                              registry.name, delivery)  # fmt: skip

    def finish(self) -> tuple[dict[int, int], dict[int, int]]:
        """Write what the pushes made; (new images, scans queued) per delivery."""
        self.session.flush()  # the known images the pushes touched
        new: dict[int, int] = {}
        if self.created:
            table = cast(Table, ImageRow.__table__)
            statement = insert(table).returning(
                table.c.id, table.c.digest, sort_by_parameter_order=True
            )
            inserted = self.session.execute(statement, [i.values for i, _, _ in self.created])
            for (image, _, _), row in zip(self.created, inserted, strict=True):
                assert row.digest == image.digest
                image.id = row.id
            record_events(self.session, [_queued_event(i, r, self.now) for i, _, r in self.created])
            for _, delivery, _ in self.created:
                new[delivery] = new.get(delivery, 0) + 1
        self._write_tags()
        requests = [
            jobs.ScanRequest(_id(w.image), w.reference, w.registry, digest=w.image.digest,
                             reason=f"registered by reference by registry:{w.registry}")
            for w in self.scans.values()
        ]  # fmt: skip
        # An image with an open job already gets none (one open job per image).
        got_job = jobs.enqueue_scans(self.session, scans=requests, now=self.now)
        queued: dict[int, int] = {}
        for wanted in self.scans.values():
            if wanted.image.id in got_job:
                queued[wanted.delivery] = queued.get(wanted.delivery, 0) + 1
        return new, queued

    def _write_tags(self) -> None:
        by_key = {id(i): i for i in self.images.values()}
        wanted = {(_id(by_key[k]), repo, tag) for k, repo, tag in self.tags}
        if not wanted:
            return
        query = select(ImageTagRow).where(ImageTagRow.image_id.in_({w[0] for w in wanted}))
        for row in self.session.scalars(query):
            if (row.image_id, row.repository_id, row.tag) in wanted:
                row.last_seen = self.now
                wanted.discard((row.image_id, row.repository_id, row.tag))
        if wanted:
            self.session.execute(
                insert(cast(Table, ImageTagRow.__table__)),
                [
                    {"image_id": image_id, "repository_id": repo, "tag": tag,
                     "first_seen": self.now, "last_seen": self.now}
                    for image_id, repo, tag in sorted(wanted)
                ],
            )  # fmt: skip


def _id(image: _Image) -> int:
    assert image.id is not None, "an image's id is known once the batch's images are inserted"
    return image.id


def _known_images(session: Session, digests: set[str]) -> dict[str, ImageRow]:
    """The inventory's images for these digests (manifest or config digest), oldest first."""
    found: dict[str, ImageRow] = {}
    chunks = [sorted(digests)[i : i + 500] for i in range(0, len(digests), 500)]
    for chunk in chunks:
        query = select(ImageRow).where(
            or_(
                ImageRow.digest.in_(chunk),
                ImageRow.manifest_digest.in_(chunk),
                ImageRow.config_digest.in_(chunk),
            )
        )
        for image in session.scalars(query.order_by(ImageRow.id)):
            for digest in (image.digest, image.manifest_digest, image.config_digest):
                if digest in digests:
                    found.setdefault(digest, image)
    return found


def _insert_missing(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    # ON CONFLICT DO NOTHING: concurrent ingesters (replicas) each find the row, none fails.
    dialect = session.get_bind().dialect.name
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(model)
    keys = [k for k in rows[0] if k != "created"]
    session.execute(statement.values(rows).on_conflict_do_nothing(index_elements=keys))


def _place_ids(
    session: Session, places: set[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], tuple[int, int]]:
    """(registry id, repository id) in the inventory of each (host, repository), made when
    missing: a few statements for the whole batch."""
    if not places:
        return {}
    hosts = {host for host, _ in places}

    def registry_ids() -> dict[str, int]:
        query = select(RegistryRow.host, RegistryRow.id).where(RegistryRow.host.in_(hosts))
        return {row.host: row.id for row in session.execute(query)}

    registry = registry_ids()
    if hosts - registry.keys():
        missing = sorted(hosts - registry.keys())
        _insert_missing(session, RegistryRow, [{"host": h, "created": now} for h in missing])
        registry = registry_ids()

    def repository_ids() -> dict[tuple[int, str], int]:
        query = select(RepositoryRow.registry_id, RepositoryRow.name, RepositoryRow.id).where(
            RepositoryRow.registry_id.in_(set(registry.values())),
            RepositoryRow.name.in_({repo for _, repo in places}),
        )
        return {(reg, name): rid for reg, name, rid in session.execute(query)}

    repository = repository_ids()
    missing_repos = sorted({(registry[h], r) for h, r in places} - repository.keys())
    if missing_repos:
        rows = [{"registry_id": reg, "name": name, "created": now} for reg, name in missing_repos]
        _insert_missing(session, RepositoryRow, rows)
        repository = repository_ids()
    return {(h, r): (registry[h], repository[(registry[h], r)]) for h, r in places}


def _queued_event(image: _NewImage, registry: str, now: datetime) -> dict[str, Any]:
    """The `image.queued` audit event that services.images records for a new image, as the
    row values of the batch's one INSERT."""
    return event_values(
        category=EventCategory.IMAGE, level=EventLevel.INFO, action="image.queued",
        message=f"image {image.reference} registered by reference; queued for scanning",
        now=now, actor=f"registry:{registry}", image_digest=image.digest,
        data={"reference": image.reference},
    )  # fmt: skip


def _ingest_one(db: Database, delivery_id: int, now: datetime) -> IngestSummary:
    """Retry one delivery of a failed batch on its own; a failure is recorded on it."""
    try:
        with _writing(db), db.session() as session:
            rows = _claim(session, 1, delivery_id)
            return _ingest_rows(session, rows, now) if rows else IngestSummary()
    except DatabaseUnavailableError:
        raise
    except Exception as exc:
        # Recorded, not raised: one delivery that cannot be ingested must not stop the others.
        return _attempt_failed(db, delivery_id, _describe(exc), now)


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:MAX_ERROR_CHARS]


def _attempt_failed(db: Database, delivery_id: int, error: str, now: datetime) -> IngestSummary:
    with _writing(db), db.session() as session:
        row = session.get(WebhookDeliveryRow, delivery_id, with_for_update=True)
        if row is None or row.status != DeliveryStatus.PENDING:
            return IngestSummary()  # removed with its registry, or ingested by another replica
        row.attempts += 1
        row.error = error
        if row.attempts < MAX_ATTEMPTS:
            _log.warning("webhook delivery %d: attempt %d failed: %s", row.id, row.attempts, error)
            return IngestSummary(retried=1)
        row.status = DeliveryStatus.FAILED.value
        registry = session.get(ManagedRegistryRow, row.registry_id)
        name = registry.name if registry is not None else str(row.registry_id)
        record_event(
            session, category=EventCategory.REGISTRY, level=EventLevel.ERROR,
            action="registry.webhook_failed",
            message=f"webhook delivery {row.id} of registry {name!r} could not be ingested "
            f"after {row.attempts} attempts: {error}",
            now=now, actor=f"registry:{name}",
            data={"registry": name, "delivery": row.id, "error": error},
        )  # fmt: skip
        return IngestSummary(failed=1)


# --- listing ------------------------------------------------------------------------------


def list_deliveries(
    session: Session,
    *,
    name: str,
    status: DeliveryStatus | None = None,
    limit: int = 50,
    before: int | None = None,
) -> list[WebhookDeliveryRow]:
    """A registry's deliveries, newest first (keyset: pass the last id seen as `before`)."""
    registry = registries.get_registry(session, name=name)
    query = select(WebhookDeliveryRow).where(WebhookDeliveryRow.registry_id == registry.id)
    if status is not None:
        query = query.where(WebhookDeliveryRow.status == status.value)
    if before is not None:
        query = query.where(WebhookDeliveryRow.id < before)
    return list(session.scalars(query.order_by(WebhookDeliveryRow.id.desc()).limit(limit)))


def get_delivery(session: Session, *, name: str, delivery_id: int) -> WebhookDeliveryRow:
    registry = registries.get_registry(session, name=name)
    row = session.get(WebhookDeliveryRow, delivery_id)
    if row is None or row.registry_id != registry.id:
        raise NotFoundError(f"webhook delivery {delivery_id} of registry {name!r} not found")
    return row


def retry_delivery(
    session: Session, *, name: str, delivery_id: int, actor: str, now: datetime
) -> WebhookDeliveryRow:
    """Put a failed delivery back in the queue with its attempts reset (after the cause was
    fixed); an ingested or pending one is left as it is."""
    row = get_delivery(session, name=name, delivery_id=delivery_id)
    if row.status == DeliveryStatus.FAILED:
        row.status, row.attempts = DeliveryStatus.PENDING.value, 0
        record_event(
            session, category=EventCategory.REGISTRY, level=EventLevel.INFO,
            action="registry.webhook_retried",
            message=f"webhook delivery {row.id} of registry {name!r} queued again by {actor}",
            now=now, actor=actor, data={"registry": name, "delivery": row.id},
        )  # fmt: skip
    return row
