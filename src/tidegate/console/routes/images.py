"""The image inventory: register (a scan result, or a reference to scan), list, look up.

`GET /images/{key}` accepts any identity: inventory id, manifest digest, config digest (image ID)
or a reference (host/repo:tag, host/repo@digest). Registering needs `images:write`, reading
`images:read`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from tidegate.console.deps import (
    ClockDep,
    Principal,
    SessionDep,
    SettingsDep,
    require,
)
from tidegate.console.schemas.common import ERROR_RESPONSES
from tidegate.console.schemas.images import (
    ImageCreate,
    ImageDetailPublic,
    ImagePublic,
    ScanPublic,
)
from tidegate.core.policy import ImageStatus
from tidegate.core.roles import Permission
from tidegate.services import images
from tidegate.services.serialize import result_from_document

router = APIRouter(prefix="/images", tags=["images"], responses={**ERROR_RESPONSES})
Reader = Annotated[Principal, Depends(require(Permission.IMAGES_READ))]
Writer = Annotated[Principal, Depends(require(Permission.IMAGES_WRITE))]


def _public(view: images.ImageView) -> dict[str, Any]:
    row = view.row
    return {
        "id": row.id,
        "digest": row.digest,
        "manifest_digest": row.manifest_digest,
        "config_digest": row.config_digest,
        "reference": row.reference,
        "registry": view.registry,
        "repository": view.repository,
        "tags": list(view.tags),
        "labels": row.labels,
        "first_seen": row.first_seen,
        "last_seen": row.last_seen,
        "status": row.status,
        "status_reason": row.status_reason,
        "retired": row.retired,
    }


def _scan(document: dict[str, Any], scan: Any) -> ScanPublic:
    image = document.get("image", {})
    return ScanPublic(
        scanned_at=scan.scanned_at,
        db_snapshot=scan.db_snapshot,
        analyzers=document.get("analyzers", []),
        os=image.get("os"),
        facts=image.get("config", {}),
        packages=document.get("packages", []),
        findings=document.get("findings", []),
        secrets=document.get("secrets", []),
        unknowns=document.get("unknowns", []),
    )


@router.post(
    "",
    response_model=ImagePublic,
    status_code=status.HTTP_201_CREATED,
    responses={202: {"model": ImagePublic, "description": "registered by reference, scan queued"}},
)
def register_image(
    body: ImageCreate,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    response: Response,
) -> ImagePublic:
    """With `scan`: store it and evaluate the image (201). With `reference`: queue a scan (202)."""
    if body.scan is not None:
        result = result_from_document(body.scan.model_dump(mode="json"))
        row = images.register_scan(
            session,
            result=result,
            actor=principal.name,
            now=clock(),
            registry=body.registry,
            repository=body.repository,
            tag=body.tag,
        )
        return ImagePublic.model_validate(_public(images.image_view(session, row)))
    assert body.reference is not None  # the schema requires one of the two
    # The scan is a job in the queue (services.jobs): an embedded or remote worker claims it.
    row, _needs_scan = images.register_reference(
        session,
        reference=body.reference,
        actor=principal.name,
        now=clock(),
        max_attempts=settings.job_max_attempts,
    )
    response.status_code = status.HTTP_202_ACCEPTED
    return ImagePublic.model_validate(_public(images.image_view(session, row)))


@router.get("", response_model=list[ImagePublic])
def list_images(
    _p: Reader,
    session: SessionDep,
    clock: ClockDep,
    status_: Annotated[ImageStatus | None, Query(alias="status")] = None,
    registry: str | None = None,
    repository: str | None = None,
    label: Annotated[str | None, Query(description='"key" or "key=value"')] = None,
    include_retired: bool = False,
    after: Annotated[int | None, Query(description="the last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ImagePublic]:
    views = images.list_images(
        session,
        now=clock(),
        status=status_,
        registry=registry,
        repository=repository,
        label=label,
        include_retired=include_retired,
        after=after,
        limit=limit,
    )
    return [ImagePublic.model_validate(_public(v)) for v in views]


@router.get("/{key:path}", response_model=ImageDetailPublic)
def get_image(key: str, _p: Reader, session: SessionDep, clock: ClockDep) -> ImageDetailPublic:
    detail = images.image_detail(session, key=key, now=clock())
    scan = _scan(detail.scan.document, detail.scan) if detail.scan is not None else None
    verdict = detail.verdict.verdict if detail.verdict is not None else None
    return ImageDetailPublic.model_validate(
        {**_public(detail.view), "scan": scan, "verdict": verdict}
    )
