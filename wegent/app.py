"""``create_app(settings)``: routes, the policy guard, error handlers and the lifespan."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from wegent import __version__, metrics, tracing
from wegent.api import auth, kubernetes, namespaces, tokens, users
from wegent.api.bodies import add_warnings
from wegent.api.dispatch import Dispatcher
from wegent.api.errors import EXCEPTION_HANDLERS
from wegent.api.front import Front
from wegent.api.health import healthz, metrics_page, readyz
from wegent.api.observe import flush_counts, sample
from wegent.api.openapi import DocumentConfig
from wegent.api.operations import ResourceApi
from wegent.api.options import allow_every_method
from wegent.api.routes import framework_routes
from wegent.api.schema_ui import OfflineSwagger
from wegent.auth.policy import policy
from wegent.container import Services
from wegent.db.engine import Database
from wegent.db.migrate import prepare_schema
from wegent.settings import Settings, load_settings

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from wegent.tracing import ASGIApp

log = logging.getLogger("wegent")

ROUTES = [
    healthz,
    readyz,
    metrics_page,
    auth.register,
    auth.login,
    users.me,
    users.list_users,
    users.create_user,
    users.patch_user,
    *tokens.ROUTES,
    namespaces.list_namespaces,
    namespaces.create_namespace,
    namespaces.get_namespace,
    namespaces.delete_namespace,
    namespaces.list_members,
    namespaces.put_member,
    namespaces.delete_member,
    *kubernetes.ROUTES,
]


class WegentApp(Litestar):
    """Litestar, behind the front layer (``wegent.api.front``): every request passes the front
    first, which answers the resource API's operations itself (its fast door) and hands the
    rest to the framework."""

    front: Front
    entry: ASGIApp  # the front, or the front traced (wegent.tracing)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.entry(scope, receive, send)

    async def framework(self, scope: Any, receive: Any, send: Any) -> None:
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None, *, tracer_provider: TracerProvider | None = None
) -> WegentApp:
    """Build the application; settings come from the environment unless given. Requests are
    traced into ``tracer_provider`` when given, else when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set
    (``wegent.tracing``)."""
    settings = settings or load_settings()
    db = Database(settings)
    services = Services.build(settings, db)
    resource_api = ResourceApi(services)

    def sample_metrics() -> None:
        flush_counts()
        pool = db.pool.occupancy() if db.engine is not None else (0, 0, 0)
        sample(app.front.in_flight.count, pool, services.watch.watching)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await db.connect()
        sampling: asyncio.Task[None] | None = None
        try:
            await prepare_schema(db)  # or only check it: WEGENT_MIGRATE_ON_START=false
            await bootstrap_admin(services)
            await services.watch.start()
            drain_on_signal(app, settings.shutdown_delay_s, services.watch.end_streams)
            if settings.metrics:
                sampling = asyncio.create_task(every_second(sample_metrics))
            settle_garbage_collector()
            yield
        finally:
            if sampling is not None:
                sampling.cancel()
            if settings.metrics:
                sample_metrics()  # the last second's request counts, before the worker goes
            metrics.worker_exited()
            await services.watch.stop()
            await db.close()

    app = WegentApp(
        route_handlers=[*ROUTES, *framework_routes(resource_api)],
        before_request=services.guard.before_request,
        dependencies={"services": Provide(lambda: services, sync_to_thread=False, use_cache=True)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[add_warnings, allow_every_method],
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=DocumentConfig(
            title="Wegent resource API",
            version=__version__,
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="A login JWT or an API token (wg-…)",
                    ),
                    "apiKey": SecurityScheme(
                        type="apiKey",
                        name="X-API-Key",
                        security_scheme_in="header",
                        description="An API token (wg-…)",
                    ),
                }
            ),
            security=[{"bearer": []}, {"apiKey": []}],
            openapi_router=Router(
                "/schema", route_handlers=[], include_in_schema=False, opt=policy("public")
            ),
            # the document, and Swagger UI with its assets served here: no CDN (schema_ui.py)
            render_plugins=[JsonRenderPlugin(), YamlRenderPlugin(), OfflineSwagger("/schema")],
        ),
        signature_namespace={"Services": Services},
        debug=settings.debug,
        logging_config=None,  # logging is the server's (wegent.logs), not the framework's
    )
    app.state.settings = settings
    app.state.draining = False
    app.state.sample_metrics = sample_metrics
    app.state.db = db
    app.state.services = services
    app.state.kubernetes = kubernetes.KubernetesProtocol(lambda: app.openapi_schema.to_schema())
    app.front = Front(app.framework, Dispatcher(resource_api), settings, wrote=services.watch.wrote)
    app.entry = tracing.instrument(app.front, settings, tracer_provider)
    return app


async def every_second(work: Callable[[], None]) -> None:
    while True:
        work()
        await asyncio.sleep(1)


def drain_on_signal(app: Litestar, delay_s: float, end_streams: Callable[[], None]) -> None:
    """From SIGTERM or SIGINT on, ``/readyz`` answers 503 (``app.state.draining``); uvicorn's
    own shutdown (stop listening, finish the requests in flight) starts ``delay_s`` later, so
    load balancers see the 503 and stop sending first; the watch streams end as it starts.

    uvicorn's handlers are installed before the lifespan starts (in the main thread of each
    worker): this wraps them. Elsewhere (an app in tests, no uvicorn) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        uvicorn_handler = signal.getsignal(sig)
        if not isinstance(getattr(uvicorn_handler, "__self__", None), uvicorn.Server):
            continue

        def shut_down(signum: int, frame: FrameType | None, handler: Any = uvicorn_handler) -> None:
            # Watch streams would hold their connections until the graceful time-out: end
            # them now; their clients resume from their last version, on another process.
            end_streams()
            handler(signum, frame)

        def draining(signum: int, frame: FrameType | None, handler: Any = uvicorn_handler) -> None:
            app.state.draining = True
            if delay_s > 0 and signum == signal.SIGTERM:
                later = functools.partial(loop.call_later, delay_s, shut_down, signum, frame)
                loop.call_soon_threadsafe(later)
            else:
                loop.call_soon_threadsafe(end_streams)
                handler(signum, frame)  # at once: a second Ctrl-C must still force the exit

        signal.signal(sig, draining)


def settle_garbage_collector() -> None:
    """Move everything built at start-up out of the collector's sight.

    A full collection walking the app's long-lived objects stalls every request in flight
    (tens of milliseconds, most of the p99 measured by ``benchmarks/``); request garbage is
    short-lived and still collected by the young generation. The default thresholds stay: a
    larger young generation (tried: 50,000) cost 5-10 % more CPU per request once the fast
    path made requests allocate little.
    """
    gc.collect()
    gc.freeze()


async def bootstrap_admin(services: Services) -> None:
    """``WEGENT_ADMIN_USERNAME`` + ``WEGENT_ADMIN_PASSWORD``: create that admin if absent."""
    settings = services.settings
    if settings.admin_username and settings.admin_password:
        outcome = await services.users.ensure_admin(
            settings.admin_username, settings.admin_password, reset=False
        )
        log.info("admin %s: %s", settings.admin_username, outcome)
