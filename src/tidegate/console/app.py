"""The console's FastAPI application factory.

`create_app(settings)` builds an app and touches nothing: the database is opened on first use and
disposed when the app shuts down. The API lives under /api/v1 with its OpenAPI document at
/api/v1/openapi.json; /healthz and /readyz sit at the root for probes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware

from tidegate import __version__
from tidegate.console.deps import ConsoleState
from tidegate.console.errors import install_error_handlers
from tidegate.console.routes import health, routers
from tidegate.console.scheduler import BackgroundWork
from tidegate.console.settings import Settings

API_PREFIX = "/api/v1"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> FastAPI:
    state = ConsoleState(settings=settings, clock=clock or _utcnow)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Embedded scan workers and the scheduler (console/scheduler.py), stopped before the DB.
        state.open()
        work = BackgroundWork(lambda: state.database, settings, state.clock)
        work.start()
        try:
            yield
        finally:
            work.close()
            state.close()

    app = FastAPI(
        title="Tidegate console",
        version=__version__,
        summary="Inventory, image assurance, acknowledgements and audit events",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.console = state
    # Policy bundles for 100,000 images are ~10 MB of JSON and ~4 MB gzipped.
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    install_error_handlers(app)
    app.include_router(health.router)
    for router in routers():
        app.include_router(router, prefix=API_PREFIX)
    return app
