"""Registries: on-board (CRUD), test the connection, pull now, list pull runs, the push
webhook each registry's notifications call, and the deliveries it recorded.

Reading needs `registries:read`, changes `registries:write`. The webhook takes no API token: it
is authenticated by the registry's own secret in the Authorization header, as the registry's
notification config sends it (`Bearer <secret>` or the raw value). It records each delivery
with one INSERT (the deliveries of concurrent requests share one commit: console/recorder.py)
and wakes this process's ingester (console/ingest.py), which registers the pushes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from tidegate.console.deps import (
    ClockDep,
    ConsoleState,
    DatabaseDep,
    Principal,
    SessionDep,
    SettingsDep,
    get_state,
    require,
)
from tidegate.console.errors import error_response
from tidegate.console.ingest import wakeup
from tidegate.console.schemas.common import ERROR_RESPONSES, ErrorBody
from tidegate.console.schemas.registries import (
    ConnectionReportPublic,
    DeliveryPublic,
    PushEventPublic,
    RegistryCreate,
    RegistryCreated,
    RegistryPatch,
    RegistryPublic,
    RunPublic,
    WebhookAccepted,
    WebhookSecret,
)
from tidegate.core.roles import Permission
from tidegate.services import deliveries, registries
from tidegate.store.deliveries import DeliveryStatus, WebhookDeliveryRow
from tidegate.store.registries import ManagedRegistryRow, RegistryRunRow

router = APIRouter(prefix="/registries", tags=["registries"], responses={**ERROR_RESPONSES})
Reader = Annotated[Principal, Depends(require(Permission.REGISTRIES_READ))]
Writer = Annotated[Principal, Depends(require(Permission.REGISTRIES_WRITE))]


def _public(row: ManagedRegistryRow) -> dict[str, Any]:
    return {
        "name": row.name, "url": row.url, "host": row.host, "kind": row.kind,
        "auth": row.auth_kind, "insecure": row.insecure, "has_ca": bool(row.ca_pem),
        "schedule": row.schedule, "next_run": row.next_run, "scoping": row.scoping,
        "retention": row.retention, "webhook_path": f"/api/v1/registries/{row.name}/webhook",
        "created": row.created, "updated": row.updated, "updated_by": row.updated_by,
    }  # fmt: skip


def _run(row: RegistryRunRow, name: str) -> RunPublic:
    return RunPublic(
        id=row.id, registry=name, trigger=row.trigger, state=row.state, started=row.started,
        finished=row.finished, added=row.added, kept=row.kept, retired=row.retired,
        errors=row.errors,
    )  # fmt: skip


@router.get("", response_model=list[RegistryPublic])
def list_registries(_p: Reader, session: SessionDep) -> list[RegistryPublic]:
    return [RegistryPublic.model_validate(_public(r)) for r in registries.list_registries(session)]


@router.post("", response_model=RegistryCreated, status_code=status.HTTP_201_CREATED)
def create_registry(
    body: RegistryCreate,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> RegistryCreated:
    """Register a registry; the answer carries its webhook secret, this once."""
    spec = registries.RegistrySpec(
        name=body.name, url=body.url, kind=body.kind,
        credentials=body.credentials.domain() if body.credentials else None,
        insecure=body.insecure, ca_pem=body.ca_pem, schedule=body.schedule,
        scoping=body.scoping.domain(), retention=body.retention.domain(),
        webhook_secret=body.webhook_secret,
    )  # fmt: skip
    row, secret = registries.create_registry(
        session, spec=spec, key=settings.encryption_secret, actor=principal.name, now=clock()
    )
    return RegistryCreated.model_validate({**_public(row), "webhook_secret": secret})


@router.get("/{name}", response_model=RegistryPublic)
def get_registry(name: str, _p: Reader, session: SessionDep) -> RegistryPublic:
    return RegistryPublic.model_validate(_public(registries.get_registry(session, name=name)))


@router.patch("/{name}", response_model=RegistryPublic)
def update_registry(
    name: str,
    body: RegistryPatch,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> RegistryPublic:
    row = registries.update_registry(
        session,
        name=name,
        changes=body.changes(),
        key=settings.encryption_secret,
        actor=principal.name,
        now=clock(),
    )
    return RegistryPublic.model_validate(_public(row))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_registry(name: str, principal: Writer, session: SessionDep, clock: ClockDep) -> Response:
    registries.delete_registry(session, name=name, actor=principal.name, now=clock())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/webhook-secret", response_model=WebhookSecret)
def rotate_webhook_secret(
    name: str, principal: Writer, session: SessionDep, clock: ClockDep
) -> WebhookSecret:
    """Replace the webhook secret (the old one stops working now); shown this once."""
    secret = registries.rotate_webhook_secret(session, name=name, actor=principal.name, now=clock())
    return WebhookSecret(webhook_secret=secret)


@router.post("/{name}/test", response_model=ConnectionReportPublic)
def check_registry(
    name: str, _p: Writer, session: SessionDep, settings: SettingsDep
) -> ConnectionReportPublic:
    """Probe the registry with its credentials: ok, or what is wrong (DNS, TLS, 401 and the
    scheme asked for, not a registry)."""
    report = registries.check_connection(session, name=name, key=settings.encryption_secret)
    return ConnectionReportPublic(
        ok=report.ok, message=report.message,
        problem=report.problem.value if report.problem else None,
        auth_scheme=report.auth_scheme, api_version=report.api_version,
    )  # fmt: skip


@router.post("/{name}/pull", response_model=RunPublic)
def pull_registry(
    name: str, _p: Writer, database: DatabaseDep, clock: ClockDep, settings: SettingsDep
) -> RunPublic:
    """Run the scheduled pull now; the answer is the run's report."""
    run = registries.run_pull(
        database, name=name, now=clock(), key=settings.encryption_secret, clock=clock
    )
    with database.session() as session:
        rows = registries.list_runs(session, name=name, limit=1)
        return _run(rows[0], run.registry)


@router.get("/{name}/runs", response_model=list[RunPublic])
def list_runs(
    name: str, _p: Reader, session: SessionDep, limit: int = 50, before: int | None = None
) -> list[RunPublic]:
    rows = registries.list_runs(session, name=name, limit=max(1, min(limit, 500)), before=before)
    return [_run(r, name) for r in rows]


async def _webhook_body(request: Request) -> bytes:
    """The body, read up to one byte past the limit (the parser refuses what is larger)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > registries.MAX_WEBHOOK_BYTES:
            break
    return b"".join(chunks)


async def _console(request: Request) -> ConsoleState:
    # async: resolved on the event loop, not with a thread hop (the webhook is a hot path).
    return get_state(request)


ConsoleDep = Annotated[ConsoleState, Depends(_console)]


@router.post(
    "/{name}/webhook",
    response_model=WebhookAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        400: {"model": ErrorBody}, 413: {"model": ErrorBody}, 422: {"model": ErrorBody},
    },
)  # fmt: skip
async def registry_webhook(
    name: str,
    request: Request,
    console: ConsoleDep,
    body: Annotated[bytes, Depends(_webhook_body)],
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Push notifications: a Distribution envelope or a Harbor PUSH_ARTIFACT event. The body is
    checked and recorded as a delivery (202); its pushes are ingested right after: each new
    digest becomes an image and a scan job, the same digest again is neither."""
    source = request.client.host if request.client else "unknown"
    # async, with no thread of its own: the recorder's writer thread records the deliveries of
    # all concurrent requests in one transaction (console/recorder.py) and answers each.
    note = deliveries.Notification(name, authorization, body, source, console.clock())
    outcome = await console.recorder.accept(note)
    if isinstance(outcome, registries.WebhookBodyError):
        return error_response(outcome.status, "invalid_webhook", str(outcome))
    if outcome is None:  # answered, not raised: the refusal's audit event committed
        return error_response(401, "unauthorized", f"webhook of registry {name!r}: missing or "
                              "wrong secret in the Authorization header")  # fmt: skip
    # The documented WebhookAccepted, built directly: no validation round of the return value.
    accepted = {"delivery": outcome.delivery, "status": DeliveryStatus.PENDING.value,
                "events": outcome.events, "ignored": outcome.ignored}  # fmt: skip
    return JSONResponse(accepted, status_code=status.HTTP_202_ACCEPTED)


def _push(stored: Any) -> PushEventPublic:
    try:
        return PushEventPublic.model_validate(stored)
    except ValidationError:  # a row no ingester can read either: its error says why
        return PushEventPublic()


def _delivery(row: WebhookDeliveryRow, name: str) -> DeliveryPublic:
    return DeliveryPublic(
        id=row.id, registry=name, received_at=row.received_at, source=row.source,
        status=DeliveryStatus(row.status), attempts=row.attempts, error=row.error,
        ingested_at=row.ingested_at, events=[_push(e) for e in row.events],
        ignored=row.ignored, new_images=row.new_images, queued=row.queued,
    )  # fmt: skip


@router.get("/{name}/deliveries", response_model=list[DeliveryPublic])
def list_deliveries(
    name: str,
    _p: Reader,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    limit: int = 50,
    before: int | None = None,
) -> list[DeliveryPublic]:
    """Recorded webhook deliveries, newest first (`before`: the last id of the previous page)."""
    rows = deliveries.list_deliveries(
        session, name=name, status=status, limit=max(1, min(limit, 500)), before=before
    )
    return [_delivery(r, name) for r in rows]


@router.get("/{name}/deliveries/{delivery_id}", response_model=DeliveryPublic)
def get_delivery(name: str, delivery_id: int, _p: Reader, session: SessionDep) -> DeliveryPublic:
    return _delivery(deliveries.get_delivery(session, name=name, delivery_id=delivery_id), name)


@router.post("/{name}/deliveries/{delivery_id}/retry", response_model=DeliveryPublic)
def retry_delivery(
    name: str, delivery_id: int, principal: Writer, database: DatabaseDep, clock: ClockDep
) -> DeliveryPublic:
    """Queue a failed delivery again (once what made it fail is fixed)."""
    with database.session() as session:
        row = deliveries.retry_delivery(
            session, name=name, delivery_id=delivery_id, actor=principal.name, now=clock()
        )
        answer = _delivery(row, name)
    wakeup(database).set()
    return answer
