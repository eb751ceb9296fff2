"""On-boarded registries: CRUD, connection tests, pull options for scanners, push webhooks, and
scheduled pulls under scoping and retention rules.

Credentials are sealed with the operator's key (services.secrets_box) and never returned; the
webhook secret is stored as its sha256 and shown once. A webhook body is parsed and validated
completely (every push must name a valid repository, tag and digest) before anything is
written; services.deliveries records it, then registers its pushes (images, tags, scan jobs)
in batches. A pull talks to the registry outside any transaction, then writes its outcome
(added, kept, retired, errors) in one.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
from croniter import croniter
from sqlalchemy import select
from sqlalchemy.orm import Session

from tidegate.core.errors import ReferenceError_, RegistryError, TidegateError, UsageError
from tidegate.core.events import EventCategory, EventLevel
from tidegate.image.reference import parse_reference
from tidegate.integrations.registries import (
    ConnectionReport,
    RegistryAdapter,
    RegistryConnection,
    RegistryKind,
    TagInfo,
    adapter_for,
    split_url,
)
from tidegate.services import images
from tidegate.services.events import event_values, record_event
from tidegate.services.secrets_box import SecretsKeyError, open_box
from tidegate.store.db import ConflictError, Database, NotFoundError
from tidegate.store.inventory import ImageRow, ImageTagRow, RegistryRow, RepositoryRow
from tidegate.store.registries import ManagedRegistryRow, RegistryRunRow

__all__ = [
    "Credentials",
    "PullOptions",
    "PullRun",
    "PushEvent",
    "RegistrySpec",
    "Retention",
    "Scoping",
    "WebhookBodyError",
    "check_connection",
    "create_registry",
    "delete_registry",
    "get_registry",
    "list_registries",
    "list_runs",
    "parse_webhook",
    "pull_options",
    "rotate_webhook_secret",
    "run_due_pulls",
    "run_pull",
    "secret_matches",
    "update_registry",
    "webhook_refusal",
]

KEY_ENV = "TIDEGATE_ENCRYPTION_KEY"
MAX_WEBHOOK_BYTES = 1024 * 1024
MAX_WEBHOOK_EVENTS = 5000
MANIFEST_MEDIA_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


# --- values -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str | None = None
    password: str | None = None
    token: str | None = None
    """A static bearer token (instead of username and password)."""

    @property
    def kind(self) -> str:
        return "token" if self.token else "basic" if self.username else "none"


@dataclass(frozen=True, slots=True)
class Scoping:
    """Which repositories and tags a pull looks at."""

    include: tuple[str, ...] = ()
    """Repository globs ("team/*"); empty: every repository."""
    exclude: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    """Tag globs ("v*", "release-*"); empty: every tag."""
    max_age_days: int | None = None
    """Only tags whose image was created within this many days (undated images are left out)."""
    max_tags_per_repo: int | None = None
    """At most this many tags per repository, the newest first."""

    def covers_repository(self, name: str) -> bool:
        if self.include and not any(fnmatch.fnmatchcase(name, g) for g in self.include):
            return False
        return not any(fnmatch.fnmatchcase(name, g) for g in self.exclude)

    def covers_tag(self, tag: str) -> bool:
        return not self.tags or any(fnmatch.fnmatchcase(tag, g) for g in self.tags)


@dataclass(frozen=True, slots=True)
class Retention:
    """Which of the scoped tags stay in the inventory; the other images there are retired."""

    keep_last: int | None = None
    """Keep the newest N tags of each repository."""
    keep_tags: tuple[str, ...] = ()
    """Keep only these tags (names or globs)."""


@dataclass(frozen=True, slots=True)
class RegistrySpec:
    name: str
    url: str
    kind: RegistryKind = RegistryKind.DISTRIBUTION
    credentials: Credentials | None = None
    insecure: bool = False
    ca_pem: str | None = None
    schedule: str | None = None
    """A cron expression ("0 3 * * *"); None: no scheduled pull."""
    scoping: Scoping = field(default_factory=Scoping)
    retention: Retention = field(default_factory=Retention)
    webhook_secret: str | None = None
    """None: the console makes one (returned once)."""


@dataclass(frozen=True, slots=True)
class PullOptions:
    """What a scanner needs to pull from a registry."""

    username: str | None
    password: str | None
    token: str | None
    insecure: bool
    ca_pem: str | None


@dataclass(frozen=True, slots=True)
class PushEvent:
    repository: str
    digest: str
    tag: str | None


@dataclass(frozen=True, slots=True)
class PullRun:
    registry: str
    run_id: int
    state: str
    added: tuple[str, ...]
    kept: tuple[str, ...]
    retired: tuple[str, ...]
    errors: tuple[str, ...]


class WebhookBodyError(UsageError):
    """A webhook body that cannot be accepted; `status` is the HTTP answer (400, 413, 422)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


# --- validation ---------------------------------------------------------------------------


def _check_spec(spec: RegistrySpec) -> None:
    if not spec.name or len(spec.name) > 64 or not set(spec.name) <= _NAME_CHARS:
        raise UsageError(
            f"registry name {spec.name!r}: use 1-64 lowercase letters, digits, '-', '_' or '.'"
        )
    split_url(spec.url)
    if spec.schedule is not None and not croniter.is_valid(spec.schedule):
        raise UsageError(f"schedule {spec.schedule!r}: not a cron expression (e.g. '0 3 * * *')")
    for what, value in (
        ("scoping.max_age_days", spec.scoping.max_age_days),
        ("scoping.max_tags_per_repo", spec.scoping.max_tags_per_repo),
        ("retention.keep_last", spec.retention.keep_last),
    ):
        if value is not None and value < 1:
            raise UsageError(f"{what}: {value} is not a positive number")
    if spec.retention.keep_last is not None and spec.retention.keep_tags:
        raise UsageError("retention: give keep_last or keep_tags, not both")
    creds = spec.credentials
    if creds is not None and creds.token and creds.username:
        raise UsageError("credentials: give a username and password, or a token, not both")


def _next_run(schedule: str | None, now: datetime) -> datetime | None:
    if schedule is None:
        return None
    nxt: datetime = croniter(schedule, now).get_next(datetime)
    return nxt


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _context(name: str) -> str:
    return f"registry {name!r}"


def _seal(name: str, creds: Credentials | None, key: str | None) -> str | None:
    if creds is None or creds.kind == "none":
        return None
    plain = json.dumps({"username": creds.username, "password": creds.password,
                        "token": creds.token})  # fmt: skip
    return open_box(key).seal(plain, context=_context(name))


def _unseal(row: ManagedRegistryRow, key: str | None) -> Credentials:
    if row.credentials is None:
        return Credentials()
    if key is None:
        key = os.environ.get(KEY_ENV)  # callers holding no Settings (scan workers)
    data = json.loads(open_box(key).open(row.credentials, context=_context(row.name)))
    return Credentials(data.get("username"), data.get("password"), data.get("token"))


def scoping_document(s: Scoping) -> dict[str, Any]:
    return {"include": list(s.include), "exclude": list(s.exclude), "tags": list(s.tags),
            "max_age_days": s.max_age_days, "max_tags_per_repo": s.max_tags_per_repo}  # fmt: skip


def retention_document(r: Retention) -> dict[str, Any]:
    return {"keep_last": r.keep_last, "keep_tags": list(r.keep_tags)}


def scoping_of(row: ManagedRegistryRow) -> Scoping:
    d = row.scoping
    return Scoping(tuple(d.get("include", ())), tuple(d.get("exclude", ())),
                   tuple(d.get("tags", ())), d.get("max_age_days"),
                   d.get("max_tags_per_repo"))  # fmt: skip


def retention_of(row: ManagedRegistryRow) -> Retention:
    d = row.retention
    return Retention(d.get("keep_last"), tuple(d.get("keep_tags", ())))


# --- CRUD ---------------------------------------------------------------------------------


def _event(session: Session, row: ManagedRegistryRow, action: str, message: str,
           actor: str | None, now: datetime, level: EventLevel = EventLevel.INFO,
           data: Mapping[str, Any] | None = None) -> None:  # fmt: skip
    record_event(
        session, category=EventCategory.REGISTRY, level=level, action=action,
        message=f"registry {row.name}: {message}", now=now, actor=actor,
        data={"registry": row.name, **(data or {})},
    )  # fmt: skip


def list_registries(session: Session) -> list[ManagedRegistryRow]:
    return list(session.scalars(select(ManagedRegistryRow).order_by(ManagedRegistryRow.name)))


def get_registry(session: Session, *, name: str) -> ManagedRegistryRow:
    row = session.scalars(select(ManagedRegistryRow).where(ManagedRegistryRow.name == name)).first()
    if row is None:
        raise NotFoundError(f"registry {name!r} not found")
    return row


def create_registry(
    session: Session, *, spec: RegistrySpec, key: str | None, actor: str | None, now: datetime
) -> tuple[ManagedRegistryRow, str]:
    """Store a registry; returns it and its webhook secret (shown this once)."""
    _check_spec(spec)
    if session.scalars(
        select(ManagedRegistryRow.id).where(ManagedRegistryRow.name == spec.name)
    ).first():
        raise ConflictError(f"registry {spec.name!r} exists already")
    secret = spec.webhook_secret or secrets.token_urlsafe(32)
    row = ManagedRegistryRow(
        name=spec.name, url=spec.url.rstrip("/"), host=split_url(spec.url)[1],
        kind=spec.kind.value, auth_kind=(spec.credentials or Credentials()).kind,
        credentials=_seal(spec.name, spec.credentials, key), insecure=spec.insecure,
        ca_pem=spec.ca_pem, webhook_secret_hash=_hash(secret), schedule=spec.schedule,
        next_run=_next_run(spec.schedule, now), scoping=scoping_document(spec.scoping),
        retention=retention_document(spec.retention), created=now, updated=now,
        updated_by=actor,
    )  # fmt: skip
    session.add(row)
    session.flush()
    _event(session, row, "registry.created", f"registered ({row.url}, {row.kind}, "
           f"auth {row.auth_kind})", actor, now)  # fmt: skip
    return row, secret


def spec_of(row: ManagedRegistryRow) -> RegistrySpec:
    """The row as a spec, without credentials (they stay sealed)."""
    return RegistrySpec(
        name=row.name, url=row.url, kind=RegistryKind(row.kind), insecure=row.insecure,
        ca_pem=row.ca_pem, schedule=row.schedule, scoping=scoping_of(row),
        retention=retention_of(row),
    )  # fmt: skip


_UNSET: Any = object()


def update_registry(
    session: Session,
    *,
    name: str,
    changes: Mapping[str, Any],
    key: str | None,
    actor: str | None,
    now: datetime,
) -> ManagedRegistryRow:
    """Apply `changes` (fields of RegistrySpec but name; `credentials` None clears them)."""
    row = get_registry(session, name=name)
    unknown = set(changes) - (set(RegistrySpec.__dataclass_fields__) - {"name", "webhook_secret"})
    if unknown:
        raise UsageError(f"registry {name}: cannot change {', '.join(sorted(unknown))}")
    spec = replace(spec_of(row), **{k: v for k, v in changes.items() if k != "credentials"})
    _check_spec(replace(spec, credentials=changes.get("credentials")))
    row.url, row.host, row.kind = spec.url.rstrip("/"), split_url(spec.url)[1], spec.kind.value
    row.insecure, row.ca_pem = spec.insecure, spec.ca_pem
    if spec.schedule != row.schedule:
        row.schedule, row.next_run = spec.schedule, _next_run(spec.schedule, now)
    row.scoping, row.retention = scoping_document(spec.scoping), retention_document(spec.retention)
    if "credentials" in changes:
        creds: Credentials | None = changes["credentials"]
        row.credentials = _seal(name, creds, key)
        row.auth_kind = (creds or Credentials()).kind
    row.updated, row.updated_by = now, actor
    _event(session, row, "registry.updated", f"changed {', '.join(sorted(changes))}", actor, now,
           data={"fields": sorted(changes)})  # fmt: skip
    return row


def delete_registry(session: Session, *, name: str, actor: str | None, now: datetime) -> None:
    row = get_registry(session, name=name)
    _event(session, row, "registry.deleted", "deleted (its images stay in the inventory)",
           actor, now)  # fmt: skip
    session.delete(row)


def rotate_webhook_secret(session: Session, *, name: str, actor: str | None, now: datetime) -> str:
    row = get_registry(session, name=name)
    secret = secrets.token_urlsafe(32)
    row.webhook_secret_hash, row.updated, row.updated_by = _hash(secret), now, actor
    _event(session, row, "registry.webhook_secret_rotated", "webhook secret replaced", actor, now)
    return secret


def connection_of(row: ManagedRegistryRow, key: str | None) -> RegistryConnection:
    creds = _unseal(row, key)
    return RegistryConnection(row.url, creds.username, creds.password, creds.token,
                              row.insecure, row.ca_pem)  # fmt: skip


def pull_options(session: Session, registry_name: str, *, key: str | None = None) -> PullOptions:
    """How a scanner pulls from `registry_name` (NotFoundError when it is not registered).

    Without `key`, TIDEGATE_ENCRYPTION_KEY opens the credentials.
    """
    row = get_registry(session, name=registry_name)
    creds = _unseal(row, key)
    insecure = row.insecure or row.url.startswith("http://")
    return PullOptions(creds.username, creds.password, creds.token, insecure, row.ca_pem)


def check_connection(
    session: Session,
    *,
    name: str,
    key: str | None,
    transport: httpx.BaseTransport | None = None,
) -> ConnectionReport:
    """Probe the registry with its credentials; the report says what is wrong."""
    row = get_registry(session, name=name)
    adapter = adapter_for(RegistryKind(row.kind), connection_of(row, key), transport=transport)
    try:
        return adapter.check()
    finally:
        adapter.close()


# --- webhook ------------------------------------------------------------------------------


def secret_matches(secret_hash: str, authorization: str | None) -> bool:
    """Whether `authorization` carries the secret whose sha256 is `secret_hash`: the raw value,
    or "Bearer <secret>". Compared as sha256 digests, in constant time: the secret is random
    and long, so a fast hash of it is as good as a slow one, and the webhook is a hot path."""
    value = (authorization or "").strip()
    scheme, _, rest = value.partition(" ")
    candidates = [value] + ([rest.strip()] if scheme.lower() == "bearer" and rest else [])
    return any(hmac.compare_digest(_hash(c), secret_hash) for c in candidates if c)


def webhook_refusal(
    *, name: str, registry_known: bool, authorization: str | None, now: datetime, source: str
) -> dict[str, Any]:
    """The audit event of a refused webhook, as the values of its `events` row (recorded in
    the transaction of the deliveries accepted with it): it names the registry, the source and
    the reason, never the value sent."""
    why = "wrong secret" if (authorization or "").strip() else "no Authorization header"
    if not registry_known:
        why = "no such registry"
    return event_values(
        category=EventCategory.REGISTRY, level=EventLevel.WARNING,
        action="registry.webhook_refused",
        message=f"webhook for registry {name!r} from {source} refused: {why}", now=now,
        data={"registry": name, "source": source, "reason": why},
    )  # fmt: skip


def parse_webhook(body: bytes) -> tuple[list[PushEvent], int]:
    """The manifest pushes of a Distribution envelope or a Harbor PUSH_ARTIFACT event, and how
    many events were ignored; WebhookBodyError naming the problem otherwise."""
    if len(body) > MAX_WEBHOOK_BYTES:
        raise WebhookBodyError(f"webhook body: larger than {MAX_WEBHOOK_BYTES} bytes", 413)
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookBodyError(f"webhook body: not JSON: {exc}", 400) from exc
    if isinstance(doc, dict) and "events" in doc:
        return _distribution_events(doc["events"])
    if isinstance(doc, dict) and "type" in doc and "event_data" in doc:
        return _harbor_events(doc)
    raise WebhookBodyError(
        'webhook body: neither a Distribution notification envelope ({"events": [...]}) '
        'nor a Harbor event ({"type": ..., "event_data": ...})'
    )


def _text(obj: Mapping[str, Any], key: str, where: str, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise WebhookBodyError(f"webhook body: {where}.{key} is missing or not a string")
    return value


def _digest(value: str | None, where: str) -> str:
    algo, _, hexpart = (value or "").partition(":")
    if (
        algo not in ("sha256", "sha512")
        or not hexpart
        or not all(c in "0123456789abcdef" for c in hexpart)
    ):
        raise WebhookBodyError(f"webhook body: {where} {value!r} is not a digest")
    return f"{algo}:{hexpart}"


def _push(repository: str, digest: str, tag: str | None, where: str) -> PushEvent:
    """The push, when repository and tag make a valid reference: refused now, not failed at
    ingestion, since the webhook answers before the push is registered."""
    named = f"registry.invalid/{repository}" + (f":{tag}" if tag else "")
    try:
        parse_reference(f"{named}@{digest}")
    except ReferenceError_ as exc:
        raise WebhookBodyError(f"webhook body: {where}: {exc}") from exc
    return PushEvent(repository, digest, tag)


def _distribution_events(events: Any) -> tuple[list[PushEvent], int]:
    if not isinstance(events, list):
        raise WebhookBodyError("webhook body: events is not a list")
    if len(events) > MAX_WEBHOOK_EVENTS:
        raise WebhookBodyError(f"webhook body: more than {MAX_WEBHOOK_EVENTS} events", 413)
    out: list[PushEvent] = []
    ignored = 0
    for i, event in enumerate(events):
        where = f"events[{i}]"
        if not isinstance(event, dict) or not isinstance(event.get("target"), dict):
            raise WebhookBodyError(f"webhook body: {where} is not an event with a target")
        target = event["target"]
        media_type = target.get("mediaType")
        # Pulls and blob pushes are noise; so are tagless manifest pushes (the platform
        # manifests of an index, pushed by digest before the index is tagged).
        if event.get("action") != "push" or media_type not in MANIFEST_MEDIA_TYPES:
            ignored += 1
            continue
        repo = _text(target, "repository", f"{where}.target")
        digest = _digest(_text(target, "digest", f"{where}.target"), f"{where}.target.digest")
        tag = _text(target, "tag", f"{where}.target", required=False)
        if tag is None:
            ignored += 1
            continue
        assert repo is not None
        out.append(_push(repo, digest, tag, where))
    return out, ignored


def _harbor_events(doc: Mapping[str, Any]) -> tuple[list[PushEvent], int]:
    if doc["type"] != "PUSH_ARTIFACT":
        return [], 1
    data = doc["event_data"]
    if not isinstance(data, dict) or not isinstance(data.get("repository"), dict):
        raise WebhookBodyError("webhook body: event_data.repository is missing")
    repo = _text(data["repository"], "repo_full_name", "event_data.repository")
    resources = data.get("resources")
    if not isinstance(resources, list) or not resources:
        raise WebhookBodyError("webhook body: event_data.resources is missing or empty")
    out = []
    for i, res in enumerate(resources):
        where = f"event_data.resources[{i}]"
        if not isinstance(res, dict):
            raise WebhookBodyError(f"webhook body: {where} is not an object")
        digest = _digest(_text(res, "digest", where), f"{where}.digest")
        assert repo is not None
        out.append(_push(repo, digest, _text(res, "tag", where, required=False), where))
    return out, 0


def _tag_image(session: Session, image: ImageRow, host: str, repo: str, tag: str,
               now: datetime) -> None:  # fmt: skip
    """Record that host/repo:tag names `image` (a known digest pushed under another tag)."""
    reg = session.scalars(select(RegistryRow).where(RegistryRow.host == host)).first()
    if reg is None:
        reg = RegistryRow(host=host, created=now)
        session.add(reg)
        session.flush()
    query = select(RepositoryRow).where(RepositoryRow.registry_id == reg.id,
                                        RepositoryRow.name == repo)  # fmt: skip
    repository = session.scalars(query).first()
    if repository is None:
        repository = RepositoryRow(registry_id=reg.id, name=repo, created=now)
        session.add(repository)
        session.flush()
    tag_query = select(ImageTagRow).where(
        ImageTagRow.image_id == image.id, ImageTagRow.repository_id == repository.id,
        ImageTagRow.tag == tag,
    )  # fmt: skip
    row = session.scalars(tag_query).first()
    if row is None:
        session.add(ImageTagRow(image_id=image.id, repository_id=repository.id, tag=tag,
                                first_seen=now, last_seen=now))  # fmt: skip
    else:
        row.last_seen = now
    image.registry_id = image.registry_id or reg.id
    image.repository_id = image.repository_id or repository.id


def _known(session: Session, digest: str) -> ImageRow | None:
    query = select(ImageRow).where(
        (ImageRow.digest == digest) | (ImageRow.manifest_digest == digest)
    )
    return session.scalars(query.order_by(ImageRow.id)).first()


def _ingest(
    session: Session, row: ManagedRegistryRow, event: PushEvent, now: datetime
) -> tuple[ImageRow, bool, bool]:
    """Register one pushed digest; (image, whether it is new, whether a scan was queued)."""
    known = _known(session, event.digest)
    named = f"{row.host}/{event.repository}" + (f":{event.tag}" if event.tag else "")
    reference = f"{named}@{event.digest}"
    image, needs_scan = images.register_reference(
        session, reference=reference, actor=f"registry:{row.name}", now=now,
        registry_name=row.name,
    )  # fmt: skip
    if event.tag and known is not None:  # a new image was placed under its tag already
        _tag_image(session, image, row.host, event.repository, event.tag, now)
    image.retired = False  # pushed again: it is live
    # register_reference queued the scan (one open job per image); a known digest queues none.
    queued = needs_scan and known is None
    return image, known is None, queued


# --- scheduled pull -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Listing:
    """What a pull found: the tags to keep per repository, and what it could not read."""

    kept: list[TagInfo]
    repositories: set[str]
    """Repositories listed completely (images of others are never retired by this run)."""
    errors: list[str]


def _newest_first(infos: Iterable[TagInfo]) -> list[TagInfo]:
    # Undated tags sort last; equal dates by tag name, so a run is deterministic.
    return sorted(infos, key=lambda t: (t.created is None, -(t.created.timestamp() if t.created
                                                              else 0), t.tag))  # fmt: skip


def select_tags(
    infos: Sequence[TagInfo], scoping: Scoping, retention: Retention, now: datetime
) -> list[TagInfo]:
    """Scoping then retention over one repository's described tags."""
    chosen = [t for t in infos if scoping.covers_tag(t.tag)]
    if scoping.max_age_days is not None:
        oldest = now - timedelta(days=scoping.max_age_days)
        chosen = [t for t in chosen if t.created is not None and t.created >= oldest]
    chosen = _newest_first(chosen)
    if scoping.max_tags_per_repo is not None:
        chosen = chosen[: scoping.max_tags_per_repo]
    if retention.keep_tags:
        chosen = [t for t in chosen if any(fnmatch.fnmatchcase(t.tag, g)
                                           for g in retention.keep_tags)]  # fmt: skip
    if retention.keep_last is not None:
        chosen = chosen[: retention.keep_last]
    return chosen


def _list_registry(
    adapter: RegistryAdapter, scoping: Scoping, retention: Retention, now: datetime
) -> _Listing:
    listing = _Listing([], set(), [])
    for repo in adapter.repositories():
        if not scoping.covers_repository(repo):
            continue
        try:
            infos = [adapter.describe(repo, tag) for tag in adapter.tags(repo)
                     if scoping.covers_tag(tag)]  # fmt: skip
        except TidegateError as exc:
            listing.errors.append(f"{repo}: {exc}")
            continue
        listing.repositories.add(repo)
        listing.kept.extend(select_tags(infos, scoping, retention, now))
    return listing


def _retire(
    session: Session, row: ManagedRegistryRow, listing: _Listing, kept_ids: set[int],
    now: datetime,
) -> list[str]:  # fmt: skip
    """Retire the registry's images in fully listed, scoped repositories that were not kept."""
    query = (
        select(ImageRow, RepositoryRow.name)
        .join(RepositoryRow, RepositoryRow.id == ImageRow.repository_id)
        .join(RegistryRow, RegistryRow.id == RepositoryRow.registry_id)
        .where(RegistryRow.host == row.host, ImageRow.retired.is_(False))
        .order_by(ImageRow.id)
    )
    scoping = scoping_of(row)
    retired = []
    for image, repo in session.execute(query):
        if image.id in kept_ids or not scoping.covers_repository(repo):
            continue
        if repo not in listing.repositories and _seen_in_catalog_error(repo, listing):
            continue
        image.retired = True
        what = f"{repo}@{image.digest}"
        retired.append(what)
        record_event(
            session, category=EventCategory.IMAGE, level=EventLevel.INFO, action="image.retired",
            message=f"image {row.host}/{what} retired by the retention rule of registry "
            f"{row.name}", now=now, actor=f"registry:{row.name}", image_digest=image.digest,
            data={"registry": row.name, "repository": repo},
        )  # fmt: skip
    return retired


def _seen_in_catalog_error(repo: str, listing: _Listing) -> bool:
    return any(e.startswith(f"{repo}: ") for e in listing.errors)


def _record_run(
    session: Session, row: ManagedRegistryRow, listing: _Listing | None, error: str | None,
    trigger: str, started: datetime, now: datetime,
) -> PullRun:  # fmt: skip
    added: list[str] = []
    kept: list[str] = []
    retired: list[str] = []
    errors = list(listing.errors if listing else ()) + ([error] if error else [])
    if listing is not None:
        kept_ids: set[int] = set()
        for info in listing.kept:
            event = PushEvent(info.repository, info.digest, info.tag)
            image, is_new, _ = _ingest(session, row, event, now)
            kept_ids.add(image.id)
            (added if is_new else kept).append(f"{info.repository}:{info.tag}@{info.digest}")
        retired = _retire(session, row, listing, kept_ids, now)
    state = "failed" if listing is None else "done"
    run = RegistryRunRow(registry_id=row.id, trigger=trigger, state=state, started=started,
                         finished=now, added=added, kept=kept, retired=retired,
                         errors=errors)  # fmt: skip
    session.add(run)
    session.flush()
    _event(session, row, "registry.pull", f"{trigger} pull {state}: {len(added)} added, "
           f"{len(kept)} kept, {len(retired)} retired, {len(errors)} errors", None, now,
           level=EventLevel.ERROR if listing is None else EventLevel.INFO,
           data={"run": run.id, "errors": errors[:20]})  # fmt: skip
    return PullRun(row.name, run.id, state, tuple(added), tuple(kept), tuple(retired),
                   tuple(errors))  # fmt: skip


def run_pull(
    db: Database,
    *,
    name: str,
    now: datetime,
    key: str | None = None,
    trigger: str = "manual",
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], datetime] | None = None,
) -> PullRun:
    """Enumerate the registry under its rules; add, keep and retire; record the run."""
    failure = ""
    with db.session() as session:
        row = get_registry(session, name=name)
        kind, scoping, retention = RegistryKind(row.kind), scoping_of(row), retention_of(row)
        try:
            conn: RegistryConnection | None = connection_of(row, key)
        except SecretsKeyError as exc:
            conn, failure = None, str(exc)
    listing: _Listing | None = None
    if conn is not None:
        adapter = adapter_for(kind, conn, transport=transport)
        try:
            listing = _list_registry(adapter, scoping, retention, now)
        except (RegistryError, TidegateError) as exc:
            failure = f"listing {conn.url} failed: {exc}"
        finally:
            adapter.close()
    with db.session() as session:
        row = get_registry(session, name=name)
        finished = clock() if clock is not None else now
        return _record_run(session, row, listing, failure or None, trigger, now, finished)


def run_due_pulls(db: Database, *, now: datetime, key: str | None = None) -> list[PullRun]:
    """Run every registry whose schedule is due; each run moves its next time first, so a
    crash mid-pull does not make the next scheduler tick start it again at once."""
    with db.session() as session:
        query = select(ManagedRegistryRow).where(
            ManagedRegistryRow.next_run.is_not(None), ManagedRegistryRow.next_run <= now
        )
        due = []
        for row in session.scalars(query.order_by(ManagedRegistryRow.next_run)):
            row.next_run = _next_run(row.schedule, now)
            due.append(row.name)
    return [run_pull(db, name=name, now=now, key=key, trigger="schedule") for name in due]


def list_runs(
    session: Session, *, name: str, limit: int = 50, before: int | None = None
) -> list[RegistryRunRow]:
    row = get_registry(session, name=name)
    query = select(RegistryRunRow).where(RegistryRunRow.registry_id == row.id)
    if before is not None:
        query = query.where(RegistryRunRow.id < before)
    return list(session.scalars(query.order_by(RegistryRunRow.id.desc()).limit(limit)))
