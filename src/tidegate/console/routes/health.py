"""Liveness and readiness, outside the versioned API (load balancers and orchestrators use them)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tidegate.console.deps import DatabaseDep
from tidegate.store.db import DatabaseUnavailableError

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive and serving; says nothing about the database."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "the database is unreachable or behind"}})
def readyz(database: DatabaseDep) -> JSONResponse:
    """Ready when the database answers and its schema is at this code's head revision."""
    try:
        database.check_ready()
    except DatabaseUnavailableError as exc:
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready", "database": database.dialect})
