"""Optional tracing (API.md §18, ``wegent.tracing``): OpenTelemetry's ASGI instrumentation
around the front layer, a span per request named after its route template, with the request
id; OTLP export when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; nothing imported otherwise."""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import make_settings
from tests.helpers import register
from tests.resources.api import Api, ghost
from wegent import tracing
from wegent.app import WegentApp, create_app
from wegent.settings import Settings, SettingsError, load_settings

MakeDatabase = Callable[[], Awaitable[str]]
GHOST = "/api/v1/namespaces/{namespace}/ghosts/{name}"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@contextlib.asynccontextmanager
async def traced_app(
    settings: Settings, provider: TracerProvider
) -> AsyncIterator[tuple[WegentApp, httpx.AsyncClient]]:
    app = create_app(settings, tracer_provider=provider)
    async with (
        LifespanManager(app, startup_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t.test") as c,
    ):
        yield app, c


@pytest.fixture(scope="module")
async def database(make_database: MakeDatabase) -> str:
    return await make_database()


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
async def traced(
    database: str, exporter: InMemorySpanExporter, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[WegentApp, httpx.AsyncClient]]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = make_settings(database, tmp_path_factory.mktemp("traced"))
    async with traced_app(settings, provider) as pair:
        yield pair


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[Callable[[], list[ReadableSpan]]]:
    exporter.clear()
    yield lambda: list(exporter.get_finished_spans())


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "framework"])
async def test_a_span_per_request_with_its_route_status_and_request_id(
    traced: tuple[WegentApp, httpx.AsyncClient],
    spans: Callable[[], list[ReadableSpan]],
    fast: bool,
) -> None:
    app, client = traced
    account = await register(client)
    api = Api(client, account, account.username, "B")
    await api.must_create("ghosts", ghost("secret-name-123"))
    app.front.fast = fast
    try:
        got = await api.get("ghosts", "secret-name-123", headers={"X-Request-ID": "trace-1"})
        missing = await api.get("ghosts", "nope")
        unknown = await client.get("/no/such/path", headers={"X-Request-ID": "trace-3"})
        me = await client.get("/api/v1/users/me", headers=account.headers)
    finally:
        app.front.fast = True
    assert [got.status_code, missing.status_code, unknown.status_code, me.status_code] == [
        200,
        404,
        404,
        200,
    ]
    found = spans()[-4:]
    assert all(s.kind is SpanKind.SERVER for s in found)
    assert len(spans()) == len({s.context.span_id for s in spans()})  # no receive/send spans
    summary = [
        (
            s.name,
            s.attributes.get("http.method"),
            s.attributes.get("http.route"),
            s.attributes.get("http.status_code"),
            s.attributes.get(tracing.REQUEST_ID_ATTRIBUTE),
        )
        for s in found
        if s.attributes is not None
    ]
    assert summary == [
        (f"GET {GHOST}", "GET", GHOST, 200, "trace-1"),
        (f"GET {GHOST}", "GET", GHOST, 404, missing.headers["x-request-id"]),
        ("GET", "GET", None, 404, "trace-3"),
        ("GET /api/v1/users/me", "GET", "/api/v1/users/me", 200, me.headers["x-request-id"]),
    ]
    assert all("secret-name-123" not in s.name for s in found)


async def test_a_span_continues_the_callers_trace(
    traced: tuple[WegentApp, httpx.AsyncClient], spans: Callable[[], list[ReadableSpan]]
) -> None:
    _, client = traced
    answer = await client.get("/healthz", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert answer.status_code == 200
    [span] = spans()
    assert span.name == "GET /healthz"
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT_ID


async def test_an_unknown_method_is_named_http(
    traced: tuple[WegentApp, httpx.AsyncClient], spans: Callable[[], list[ReadableSpan]]
) -> None:
    _, client = traced
    assert (await client.request("BREW", "/healthz")).status_code == 405
    [span] = spans()
    assert span.name == "HTTP"
    assert span.attributes is not None and span.attributes["http.status_code"] == 405


class Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver on loopback: keeps what is posted to /v1/traces."""

    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


async def test_otlp_export_when_the_endpoint_is_set(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The production set-up: ``OTEL_EXPORTER_OTLP_ENDPOINT`` makes ``create_app`` trace into a
    batching OTLP/HTTP exporter, which posts the spans to ``{endpoint}/v1/traces``."""
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "wegent-test")
    Collector.received = []
    made: list[TracerProvider] = []
    exporting = tracing.exporting_provider

    def keep() -> TracerProvider:
        made.append(exporting())  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(tracing, "exporting_provider", keep)
    settings = load_settings(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "WEGENT_DATABASE_URL": database,
            "WEGENT_DATA_DIR": str(tmp_path),
            "WEGENT_JWT_SECRET": "j" * 48,
            "WEGENT_SECRET_KEY": "k" * 48,
        }
    )
    assert settings.otel_endpoint == endpoint
    try:
        app = create_app(settings)
        assert isinstance(app.entry, OpenTelemetryMiddleware)
        async with (
            LifespanManager(app, startup_timeout=60),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://o.t") as c,
        ):
            answer = await c.get("/healthz", headers={"X-Request-ID": "otlp-1"})
        assert answer.status_code == 200
        [provider] = made
        assert provider.force_flush(10_000)  # the batch is sent now, not in 5 s
    finally:
        receiver.shutdown()
        receiver.server_close()
    [(path, content_type, body)] = Collector.received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    export = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = export.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "wegent-test"
    [span] = [s for scope in resource_spans.scope_spans for s in scope.spans]
    attributes = {a.key: a.value for a in span.attributes}
    assert span.name == "GET /healthz"
    assert attributes[tracing.REQUEST_ID_ATTRIBUTE].string_value == "otlp-1"
    assert attributes["http.status_code"].int_value == 200


def test_without_the_endpoint_nothing_of_opentelemetry_is_imported(tmp_path: Path) -> None:
    """In a fresh interpreter: an app made without ``OTEL_EXPORTER_OTLP_ENDPOINT`` is its front
    layer, and no ``opentelemetry`` module was loaded for it: neither the SDK nor an exporter,
    nor anything else beyond what Litestar itself loads when OpenTelemetry is installed (any
    ``Litestar()`` imports the API and the ASGI instrumentation to look for its own plugin's
    middleware: ``Litestar._patch_opentelemetry_middleware``)."""
    script = textwrap.dedent(
        f"""
        import sys
        import litestar
        from wegent.app import create_app
        from wegent.settings import load_settings

        def otel():
            return {{m for m in sys.modules if m.split(".")[0] == "opentelemetry"}}

        litestar.Litestar()
        framework = otel()
        settings = load_settings({{
            "WEGENT_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "WEGENT_DATA_DIR": {str(tmp_path)!r},
            "WEGENT_JWT_SECRET": "j" * 48,
            "WEGENT_SECRET_KEY": "k" * 48,
        }})
        app = create_app(settings)
        assert app.entry is app.front, app.entry
        print(sorted(otel() - framework))
        print(sorted(m for m in otel() if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "[]"]


def test_the_endpoint_without_the_extra_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import wegent.settings as settings_module

    monkeypatch.setattr(settings_module, "_installed", lambda module: False)
    with pytest.raises(SettingsError) as refused:
        load_settings(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                "WEGENT_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
                "WEGENT_DATA_DIR": str(tmp_path),
                "WEGENT_JWT_SECRET": "j" * 48,
                "WEGENT_SECRET_KEY": "k" * 48,
            }
        )
    assert str(refused.value) == (
        "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
        "pip install 'wegent[otel]'"
    )
