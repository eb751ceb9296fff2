"""Shapes shared by every resource: the base model of request bodies and the error body."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class RequestBody(BaseModel):
    """A body sent by a client: unknown fields are refused (422 naming them), not ignored."""

    model_config = ConfigDict(extra="forbid")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must carry a time zone (e.g. 2025-01-31T00:00:00Z)")
    return value


AwareDatetime = Annotated[datetime | None, AfterValidator(_aware)]
"""An optional time that must say its time zone (naive times are refused with 422)."""


class PublicModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer except 422 (which keeps FastAPI's `detail` list naming the field)."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "no, invalid, expired or revoked token"},
    403: {"model": ErrorBody, "description": "the token's role lacks the permission"},
}
