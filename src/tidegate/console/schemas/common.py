"""Shapes shared by every resource: the base model of request bodies and the error body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """A body sent by a client: unknown fields are refused (422 naming them), not ignored."""

    model_config = ConfigDict(extra="forbid")


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
