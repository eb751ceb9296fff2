"""Every router of the API, as one explicit list (no import-time registration)."""

from __future__ import annotations

from fastapi import APIRouter

from tidegate.console.routes.acks import router as acks_router
from tidegate.console.routes.auth import router as auth_router
from tidegate.console.routes.enforcer_api import router as enforcer_api_router
from tidegate.console.routes.enforcers import router as enforcers_router
from tidegate.console.routes.events import router as events_router
from tidegate.console.routes.gate import router as gate_router
from tidegate.console.routes.images import router as images_router
from tidegate.console.routes.jobs import router as jobs_router
from tidegate.console.routes.policies import router as policies_router
from tidegate.console.routes.profiles import router as profiles_router
from tidegate.console.routes.profiling_enforcer import router as profiling_enforcer_router
from tidegate.console.routes.registries import router as registries_router
from tidegate.console.routes.runtime import router as runtime_router
from tidegate.console.routes.tokens import router as tokens_router
from tidegate.console.routes.users import router as users_router


def routers() -> list[APIRouter]:
    """The routers mounted under /api/v1, in the order the OpenAPI document lists them."""
    return [
        auth_router,
        users_router,
        tokens_router,
        events_router,
        images_router,
        policies_router,
        acks_router,
        gate_router,
        registries_router,
        jobs_router,
        runtime_router,
        enforcers_router,
        enforcer_api_router,
        profiles_router,
        profiling_enforcer_router,
    ]
