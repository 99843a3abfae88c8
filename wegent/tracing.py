"""Optional tracing with OpenTelemetry (API.md §18; the ``otel`` extra).

When ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, the app's outermost ASGI callable (the front layer,
``wegent.api.front``) is wrapped in OpenTelemetry's standard ASGI instrumentation
(``OpenTelemetryMiddleware``): a server span per request, continuing the caller's trace from a
``traceparent`` header, sent in batches by OTLP over HTTP (the exporter reads the standard
``OTEL_EXPORTER_OTLP_*`` variables itself). When the answer's head goes out, the span gets the
request's route template (``http.route``, and as its name: ``GET /api/v1/namespaces/{namespace}
/ghosts/{name}``, never the raw path) and ``wegent.request_id``, the id of API.md §18.

Without the variable nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from wegent import __version__
from wegent.request_context import CURRENT, UNROUTED
from wegent.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
REQUEST_ID_ATTRIBUTE = "wegent.request_id"


def instrument(app: ASGIApp, settings: Settings, provider: TracerProvider | None = None) -> ASGIApp:
    """``app`` traced into ``provider`` (tests give one), or into an OTLP exporting one when
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; else ``app`` itself."""
    if provider is None:
        if settings.otel_endpoint is None:
            return app
        provider = exporting_provider()
    return traced(app, provider)


def exporting_provider() -> TracerProvider:
    """A tracer provider that sends spans in batches over OTLP/HTTP; ``service.name`` is
    ``wegent`` unless ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` say otherwise."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import (
        SERVICE_NAME,
        SERVICE_VERSION,
        OTELResourceDetector,
        Resource,
    )
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    defaults = Resource.create({SERVICE_NAME: "wegent", SERVICE_VERSION: __version__})
    provider = SdkTracerProvider(resource=defaults.merge(OTELResourceDetector().detect()))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def traced(app: ASGIApp, provider: TracerProvider) -> ASGIApp:
    """``app`` in OpenTelemetry's ASGI middleware, its spans named after route templates."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    async def annotated(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        span = trace.get_current_span()

        async def send_annotated(message: Any) -> None:
            if message["type"] == "http.response.start" and span.is_recording():
                seen = CURRENT.get()  # the front layer's record of this request
                if seen is not None:
                    span.set_attribute(REQUEST_ID_ATTRIBUTE, seen.id)
                    if seen.route is not UNROUTED:
                        span.set_attribute("http.route", seen.route)
                        span.update_name(f"{_method(scope)} {seen.route}")
            await send(message)

        await app(scope, receive, send_annotated)

    middleware: ASGIApp = OpenTelemetryMiddleware(
        annotated,
        tracer_provider=provider,
        default_span_details=_span_details,
        exclude_spans=["receive", "send"],  # one span per request, not one per ASGI message
    )
    return middleware


def _method(scope: Any) -> str:
    from opentelemetry.util.http import sanitize_method

    method: str = sanitize_method(scope.get("method", ""))
    return "HTTP" if method == "_OTHER" else method


def _span_details(scope: Any) -> tuple[str, dict[str, Any]]:
    """The name a span starts with: the method alone (the raw path would put object names in
    span names); the route template is added when it is known."""
    return _method(scope), {}
