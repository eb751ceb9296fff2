"""The image inventory: register images (with a scan result, or by reference: queued as a scan
job, see services.jobs), look them up by any identity, list them.

Identity follows DESIGN.md: an image is known by its manifest digest, its config digest (the image
ID runtimes report) and its registry/repository:tag history, and every lookup accepts any of them.
A registered scan result is stored as its report document; the image is evaluated at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tidegate.core.errors import ReferenceError_, UsageError
from tidegate.core.events import EventCategory, EventLevel
from tidegate.core.models import ScanResult
from tidegate.core.policy import ImageStatus
from tidegate.image.reference import ImageReference, Transport, parse_reference
from tidegate.services.assurance import reevaluate
from tidegate.services.events import record_event
from tidegate.services.jobs import DEFAULT_MAX_ATTEMPTS, enqueue_scan
from tidegate.services.serialize import document_from_result, result_from_document
from tidegate.store.db import NotFoundError
from tidegate.store.inventory import (
    ImageRow,
    ImageTagRow,
    RegistryRow,
    RepositoryRow,
    ScanResultRow,
    VerdictRow,
)
from tidegate.store.registries import ManagedRegistryRow

__all__ = [
    "ImageView",
    "find_image",
    "image_view",
    "list_images",
    "register_reference",
    "register_scan",
]


@dataclass(frozen=True, slots=True)
class ImageView:
    """An image row with the names and tags the API shows."""

    row: ImageRow
    registry: str | None
    repository: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImageDetail:
    view: ImageView
    scan: ScanResultRow | None
    verdict: VerdictRow | None


def _insert_missing(
    session: Session, model: type[Any], keys: dict[str, Any], now: datetime
) -> None:
    """INSERT the row unless one with these unique keys exists: concurrent registrations of
    the same registry or repository (webhook bursts) each find the row, none fails."""
    dialect = session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(model)
    session.execute(
        insert.values(**keys, created=now).on_conflict_do_nothing(index_elements=list(keys))
    )


def _registry(session: Session, host: str, now: datetime) -> RegistryRow:
    query = select(RegistryRow).where(RegistryRow.host == host)
    row = session.scalars(query).first()
    if row is None:
        _insert_missing(session, RegistryRow, {"host": host}, now)
        row = session.scalars(query).one()
    return row


def _repository(session: Session, registry: RegistryRow, name: str, now: datetime) -> RepositoryRow:
    query = select(RepositoryRow).where(
        RepositoryRow.registry_id == registry.id, RepositoryRow.name == name
    )
    row = session.scalars(query).first()
    if row is None:
        _insert_missing(session, RepositoryRow, {"registry_id": registry.id, "name": name}, now)
        row = session.scalars(query).one()
    return row


def _tag(session: Session, image: ImageRow, repo: RepositoryRow, tag: str, now: datetime) -> None:
    query = select(ImageTagRow).where(
        ImageTagRow.image_id == image.id,
        ImageTagRow.repository_id == repo.id,
        ImageTagRow.tag == tag,
    )
    row = session.scalars(query).first()
    if row is None:
        session.add(
            ImageTagRow(
                image_id=image.id, repository_id=repo.id, tag=tag, first_seen=now, last_seen=now
            )
        )
    else:
        row.last_seen = now


def _place(
    session: Session,
    image: ImageRow,
    registry: str | None,
    repository: str | None,
    tag: str | None,
    now: datetime,
) -> None:
    """Attach the image to its registry and repository, and record the tag it was seen under."""
    if not registry or not repository:
        return
    reg = _registry(session, registry, now)
    repo = _repository(session, reg, repository, now)
    image.registry_id, image.repository_id = reg.id, repo.id
    if tag:
        _tag(session, image, repo, tag, now)


def _by_digest(session: Session, *digests: str | None) -> ImageRow | None:
    wanted = [d for d in digests if d]
    if not wanted:
        return None
    query = select(ImageRow).where(
        or_(
            ImageRow.digest.in_(wanted),
            ImageRow.manifest_digest.in_(wanted),
            ImageRow.config_digest.in_(wanted),
        )
    )
    return session.scalars(query.order_by(ImageRow.id)).first()


def register_scan(
    session: Session,
    *,
    result: ScanResult,
    actor: str | None,
    now: datetime,
    registry: str | None = None,
    repository: str | None = None,
    tag: str | None = None,
    placeholder: ImageRow | None = None,
) -> ImageRow:
    """Store a scan result under its image (created when new) and evaluate the image.

    `registry`, `repository` and `tag` override what the scan's reference said; `placeholder` is
    the row of an image registered by reference, which takes the scanned identity.
    """
    info = result.image
    digest = info.manifest_digest or info.config_digest
    if not digest:
        raise UsageError("scan result: image.manifest_digest or image.config_digest is required")
    image = _by_digest(session, info.manifest_digest, info.config_digest)
    if image is not None and placeholder is not None and image.id != placeholder.id:
        session.delete(placeholder)  # the image was known already: the placeholder is redundant
        session.flush()
    image = image or placeholder
    new = image is None or image.digest is None
    if image is None:
        image = ImageRow(
            first_seen=now,
            status=ImageStatus.UNSCANNED.value,
            status_reason="",
            retired=False,
            labels={},
        )
        session.add(image)
    image.digest = image.digest or digest
    image.manifest_digest = info.manifest_digest or image.manifest_digest
    image.config_digest = info.config_digest or image.config_digest
    image.reference = info.reference or image.reference
    image.labels = dict(result.facts.labels)
    image.last_seen = now
    image.retired = False
    session.flush()
    _place(
        session,
        image,
        registry or info.registry,
        repository or info.repository,
        tag or info.tag,
        now,
    )
    scan = ScanResultRow(
        image_id=image.id,
        document=document_from_result(result),
        db_snapshot=result.db_snapshot,
        analyzers=[list(a) for a in result.analyzers],
        scanned_at=result.scanned_at,
        received=now,
    )
    session.add(scan)
    session.flush()
    image.latest_scan_id = scan.id
    return _evaluate_new_scan(session, image, new=new, actor=actor, now=now)


def _evaluate_new_scan(
    session: Session, image: ImageRow, *, new: bool, actor: str | None, now: datetime
) -> ImageRow:
    old = image.status
    reevaluate(session, now=now, images=[image.id], reason=f"image {image.digest} scanned")
    session.refresh(image)
    action = "image.registered" if new else "image.rescanned"
    changed = f" (was {old})" if old != image.status and not new else ""
    record_event(
        session,
        category=EventCategory.IMAGE,
        level=EventLevel.WARNING if image.status == ImageStatus.DISALLOWED else EventLevel.INFO,
        action=action,
        message=f"image {image.digest} {action.split('.')[1]}: {image.status}{changed}: "
        f"{image.status_reason}",
        now=now,
        actor=actor,
        image_digest=image.digest,
        data={"status": image.status, "old_status": old, "reference": image.reference},
    )
    return image


def _registry_reference(reference: str) -> ImageReference:
    try:
        ref = parse_reference(reference)
    except ReferenceError_ as exc:
        raise UsageError(f"reference: {exc}") from exc
    if ref.transport is not Transport.DOCKER:
        raise UsageError(
            f"reference {reference!r}: the console scans registry images only "
            f"(host/repository:tag or @digest), not {ref.transport} paths on its own disk"
        )
    return ref


def register_reference(
    session: Session,
    *,
    reference: str,
    actor: str | None,
    now: datetime,
    registry_name: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> tuple[ImageRow, bool]:
    """Register an image to be scanned and queue its scan job (one open job per image);
    returns (image, whether a scan is needed). `registry_name` names the configured registry
    whose pull options (credentials, TLS) the worker uses."""
    image, needs_scan = _reference_image(session, reference=reference, actor=actor, now=now)
    if needs_scan:
        if registry_name is None:
            registry_name = _managed_registry(session, _registry_reference(reference).registry)
        enqueue_scan(
            session,
            image_id=image.id,
            reference=image.reference or reference,
            registry=registry_name,
            now=now,
            reason=f"registered by reference by {actor or 'the system'}",
            digest=image.digest,
            max_attempts=max_attempts,
        )
    return image, needs_scan


def _managed_registry(session: Session, host: str | None) -> str | None:
    """The configured registry serving `host`, so its worker pulls with its credentials."""
    if host is None:
        return None
    query = select(ManagedRegistryRow.name).where(ManagedRegistryRow.host == host)
    return session.scalars(query.order_by(ManagedRegistryRow.id)).first()


def _reference_image(
    session: Session, *, reference: str, actor: str | None, now: datetime
) -> tuple[ImageRow, bool]:
    ref = _registry_reference(reference)
    known = _by_digest(session, ref.digest) if ref.digest else None
    if known is None:
        query = select(ImageRow).where(
            ImageRow.reference == ref.name, ImageRow.status == ImageStatus.UNSCANNED.value
        )
        known = session.scalars(query).first()
    if known is not None and (ref.digest or known.status == ImageStatus.UNSCANNED):
        known.last_seen = now
        return known, known.latest_scan_id is None
    image = ImageRow(
        digest=ref.digest,
        manifest_digest=ref.digest,
        reference=ref.name,
        labels={},
        first_seen=now,
        last_seen=now,
        status=ImageStatus.UNSCANNED.value,
        status_reason=f"queued for scanning: {ref.name}",
        retired=False,
    )
    session.add(image)
    session.flush()
    _place(session, image, ref.registry, ref.repository, ref.tag, now)
    record_event(
        session,
        category=EventCategory.IMAGE,
        level=EventLevel.INFO,
        action="image.queued",
        message=f"image {ref.name} registered by reference; queued for scanning",
        now=now,
        actor=actor,
        image_digest=ref.digest,
        data={"reference": ref.name},
    )
    return image, True


# --- lookups ----------------------------------------------------------------------------------


def find_image(session: Session, *, key: str) -> ImageRow:
    """By inventory id, manifest digest, config digest (image ID, with or without "sha256:"),
    or reference (host/repo:tag, host/repo@digest, docker short names)."""
    image: ImageRow | None = None
    if key.isdigit():
        image = session.get(ImageRow, int(key))
    elif key.startswith(("sha256:", "sha512:")):
        image = _by_digest(session, key)
    elif len(key) == 64 and all(c in "0123456789abcdef" for c in key):
        image = _by_digest(session, f"sha256:{key}")  # podman and docker print bare image IDs
    else:
        image = _by_reference(session, key)
    if image is None:
        raise NotFoundError(f"image {key!r} not found")
    return image


def _by_reference(session: Session, key: str) -> ImageRow | None:
    ref = _registry_reference(key)
    if ref.digest:
        return _by_digest(session, ref.digest)
    query = (
        select(ImageRow)
        .join(ImageTagRow, ImageTagRow.image_id == ImageRow.id)
        .join(RepositoryRow, RepositoryRow.id == ImageTagRow.repository_id)
        .join(RegistryRow, RegistryRow.id == RepositoryRow.registry_id)
        .where(
            RegistryRow.host == ref.registry,
            RepositoryRow.name == ref.repository,
            ImageTagRow.tag == (ref.tag or "latest"),
        )
        .order_by(ImageTagRow.last_seen.desc(), ImageRow.id.desc())
    )
    # The newest image the tag named: a tag moves, the inventory keeps where it pointed.
    return session.scalars(query).first()


def _views(session: Session, rows: Sequence[ImageRow]) -> list[ImageView]:
    ids = [r.id for r in rows]
    names: dict[int, tuple[str, str]] = {}
    tags: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        query = (
            select(
                ImageTagRow.image_id,
                RepositoryRow.id,
                RegistryRow.host,
                RepositoryRow.name,
                ImageTagRow.tag,
            )
            .join(RepositoryRow, RepositoryRow.id == ImageTagRow.repository_id)
            .join(RegistryRow, RegistryRow.id == RepositoryRow.registry_id)
            .where(ImageTagRow.image_id.in_(ids))
            .order_by(ImageTagRow.last_seen.desc())
        )
        for image_id, _repo_id, tag_host, tag_repo, tag in session.execute(query):
            tags[image_id].append(f"{tag_host}/{tag_repo}:{tag}")
        repo_ids = {r.repository_id for r in rows if r.repository_id is not None}
        if repo_ids:
            query2 = (
                select(RepositoryRow.id, RegistryRow.host, RepositoryRow.name)
                .join(RegistryRow, RegistryRow.id == RepositoryRow.registry_id)
                .where(RepositoryRow.id.in_(repo_ids))
            )
            names = {rid: (host, name) for rid, host, name in session.execute(query2)}
    out = []
    for row in rows:
        place = names.get(row.repository_id) if row.repository_id is not None else None
        host: str | None = place[0] if place is not None else None
        repo: str | None = place[1] if place is not None else None
        out.append(ImageView(row, host, repo, tuple(tags[row.id])))
    return out


def list_images(
    session: Session,
    *,
    now: datetime,
    status: ImageStatus | None = None,
    registry: str | None = None,
    repository: str | None = None,
    label: str | None = None,
    include_retired: bool = False,
    after: int | None = None,
    limit: int = 100,
) -> list[ImageView]:
    """Images by id (keyset: pass the last id seen as `after`); `label` is "key" or "key=value"."""
    from tidegate.services.acks import expire_acknowledgements

    expire_acknowledgements(session, now=now)
    query = select(ImageRow)
    if status is not None:
        query = query.where(ImageRow.status == status.value)
    if not include_retired:
        query = query.where(ImageRow.retired.is_(False))
    if registry is not None:
        query = query.join(RegistryRow, RegistryRow.id == ImageRow.registry_id).where(
            RegistryRow.host == registry
        )
    if repository is not None:
        query = query.join(RepositoryRow, RepositoryRow.id == ImageRow.repository_id).where(
            RepositoryRow.name == repository
        )
    if after is not None:
        query = query.where(ImageRow.id > after)
    query = query.order_by(ImageRow.id)
    if label is None:
        return _views(session, list(session.scalars(query.limit(limit))))
    rows = list(session.scalars(query))
    if label is not None:
        # Labels are JSON: filtered here rather than in SQL, portably across both databases.
        key, eq, value = label.partition("=")
        rows = [r for r in rows if key in r.labels and (not eq or r.labels[key] == value)]
    return _views(session, rows[:limit])


def image_view(session: Session, image: ImageRow) -> ImageView:
    return _views(session, [image])[0]


def image_detail(session: Session, *, key: str, now: datetime) -> ImageDetail:
    from tidegate.services.acks import expire_acknowledgements

    expire_acknowledgements(session, now=now)
    image = find_image(session, key=key)
    session.refresh(image)
    scan = session.get(ScanResultRow, image.latest_scan_id) if image.latest_scan_id else None
    return ImageDetail(image_view(session, image), scan, session.get(VerdictRow, image.id))


def stored_result(scan: ScanResultRow) -> ScanResult:
    return result_from_document(scan.document)


def document_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """Counts of a stored scan document, for listings."""
    return {
        "packages": len(document.get("packages", ())),
        "findings": len(document.get("findings", ())),
        "secrets": len(document.get("secrets", ())),
    }
