"""How errors become HTTP answers: one JSON shape, `{"error": {"code", "message"}}`.

Errors raised on purpose by services (the TidegateError tree) map to a status by class; request
validation keeps FastAPI's 422 `detail` list, whose `loc` names the field.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tidegate.core.errors import BundleError, ImageError, TidegateError, UsageError, VulnDBError
from tidegate.services.secrets_box import SecretsKeyError
from tidegate.store.db import ConflictError, DatabaseUnavailableError, NotFoundError

_log = logging.getLogger("tidegate.console")


class ApiError(TidegateError):
    """An error of the HTTP layer itself (authentication, permission)."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})


class UnauthorizedError(ApiError):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenError(ApiError):
    status = 403
    code = "forbidden"


# First match wins: subclasses before their bases.
STATUS_BY_ERROR: tuple[tuple[type[TidegateError], int, str], ...] = (
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (DatabaseUnavailableError, 503, "database_unavailable"),
    # A missing or wrong encryption key is the operator's configuration, not the caller's input.
    (SecretsKeyError, 503, "encryption_key"),
    (BundleError, 400, "bad_bundle"),
    (UsageError, 400, "bad_request"),
    (ImageError, 400, "image_error"),
    (VulnDBError, 503, "vulndb_unavailable"),
)


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def status_for(exc: TidegateError) -> tuple[int, str]:
    if isinstance(exc, ApiError):
        return exc.status, exc.code
    for cls, status, code in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"


async def _tidegate_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TidegateError)
    status, code = status_for(exc)
    headers = exc.headers if isinstance(exc, ApiError) else None
    return error_response(status, code, str(exc), headers)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # A bug: the same JSON shape, and nothing of the exception (it may hold data) to the client.
    _log.error("unhandled error in a request", exc_info=exc)
    return error_response(500, "internal_error", "internal error (a bug): see the console log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TidegateError, _tidegate_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_exception_handler(StarletteHTTPException, _http_error)
