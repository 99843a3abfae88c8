"""``create_app(settings)``: routes, guards, error handlers and the database lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from wegent import __version__
from wegent.api.errors import EXCEPTION_HANDLERS
from wegent.api.health import healthz, readyz
from wegent.db.engine import Database
from wegent.db.migrate import migrate
from wegent.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the application; settings come from the environment unless given."""
    settings = settings or load_settings()
    db = Database(settings)

    @asynccontextmanager
    async def database_lifespan(app: Litestar) -> AsyncIterator[None]:
        await db.connect()
        try:
            await migrate(db)
            yield
        finally:
            await db.close()

    app = Litestar(
        route_handlers=[healthz, readyz],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=[database_lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="Wegent resource API", version=__version__),
        debug=settings.debug,
    )
    app.state.settings = settings
    app.state.db = db
    return app
