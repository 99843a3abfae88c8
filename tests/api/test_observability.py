"""Metrics and request ids in one process (API.md §18): what ``/metrics`` counts for answers of
either door, refusals and errors, that its route labels are templates, the counters of logins
and claims, and the settings that hide it or put it behind a token.

Every test reads ``/metrics`` before and after its requests and compares the exact deltas: one
test runs at a time in a process, so nothing else moves the request counters meanwhile (the
first reading's own ``GET /metrics`` is counted once its head is sent: the second reading
shows it).
"""

from __future__ import annotations

import asyncio
import logging
import platform
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from litestar import Litestar

from tests.conftest import make_settings
from tests.helpers import register, started, status_body, unique
from tests.metrics_text import LATENCY_COUNT, REFUSED, REQUESTS, Key, moved, parse, value
from tests.resources.api import Api, bot, ghost, team
from tests.resources.test_dispatch import claim, expire
from tests.resources.test_tasks import task
from wegent import __version__, serve
from wegent.api import errors as api_errors
from wegent.request_context import RequestIdFilter

MakeDatabase = Callable[[], Awaitable[str]]
GHOST = "/api/v1/namespaces/{namespace}/ghosts/{name}"
GHOSTS = "/api/v1/namespaces/{namespace}/ghosts"
GHOST_C = "/apis/agent.wecode.io/v1/namespaces/{namespace}/ghosts/{name}"
GHOSTS_A = "/api/v1/kinds/ghosts"
METRICS = ("GET", "/metrics", "200")  # the first reading, counted in the second
UNROUTED = "(unrouted)"
GENERATED = re.compile(r"[0-9a-f]{32}")


async def scrape(client: httpx.AsyncClient, **headers: str) -> dict[Key, float]:
    answer = await client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return parse(answer.text)


@pytest.fixture
async def api(client: httpx.AsyncClient) -> Api:
    account = await register(client)
    return Api(client, account, account.username, "B")


async def test_every_answer_of_either_door_is_counted_by_route_template(
    client: httpx.AsyncClient, app: Litestar, api: Api, door: str
) -> None:
    await api.must_create("ghosts", ghost("g1"))
    c = Api(client, api.account, api.namespace, "C")
    dispatcher = app.front.dispatcher  # type: ignore[attr-defined]
    answered = dispatcher.answered
    before = await scrape(client)
    assert (await api.get("ghosts", "g1")).status_code == 200
    assert (await api.get("ghosts", "g1")).status_code == 200
    assert (await api.get("ghosts", "nope")).status_code == 404
    assert (await c.get("ghosts", "g1")).status_code == 200
    assert (await api.create("ghosts", ghost("g2"))).status_code == 201
    assert (await api.create("ghosts", {"metadata": {"name": "g3"}, "spec": {}})).status_code == 422
    assert (await client.get(f"/api/v1/namespaces/{api.namespace}/ghosts/g1")).status_code == 401
    assert (await client.get("/healthz")).status_code == 200
    after = await scrape(client)
    counted = {
        ("GET", GHOST, "200"): 2,
        ("GET", GHOST, "404"): 1,
        ("GET", GHOST, "401"): 1,
        ("GET", GHOST_C, "200"): 1,
        ("POST", GHOSTS, "201"): 1,
        ("POST", GHOSTS, "422"): 1,
        ("GET", "/healthz", "200"): 1,
        METRICS: 1,
    }
    assert moved(before, after, REQUESTS) == counted
    assert moved(before, after, LATENCY_COUNT) == counted  # one observation per answer
    # The door the fixture chose answered them (the probes and /metrics are the framework's).
    assert dispatcher.answered - answered == (7 if door == "fast" else 0)


async def test_route_labels_are_templates_never_names_or_namespaces(
    client: httpx.AsyncClient, api: Api, door: str
) -> None:
    secret = "secret-name-123"
    assert (await api.create("ghosts", ghost(secret))).status_code == 201
    assert (await api.get("ghosts", secret)).status_code == 200
    assert (await api.request("PATCH", "ghosts", secret, json={"spec": {}})).status_code == 200
    a = Api(client, api.account, api.namespace, "A")
    assert (await a.get("ghosts", secret)).status_code == 200
    assert (await api.get("ghosts", "secret-missing-456")).status_code == 404
    assert (await client.get(f"/no/such/{secret}")).status_code == 404
    members = await client.get(
        f"/api/v1/namespaces/{api.namespace}/members", headers=api.account.headers
    )
    assert members.status_code == 200
    text = (await client.get("/metrics")).text
    for leaked in (secret, "secret-missing-456", api.namespace, "/no/such"):
        assert leaked not in text
    routes = {dict(k[1])["route"] for k in parse(text) if k[0] == REQUESTS}
    assert {GHOST, GHOSTS, UNROUTED, "/api/v1/namespaces/{namespace}/members"} <= routes
    assert "/api/v1/kinds/ghosts/{name}" in routes
    assert all(r == UNROUTED or r.startswith("/") for r in routes)


async def test_unknown_methods_are_counted_as_other(client: httpx.AsyncClient, api: Api) -> None:
    before = await scrape(client)
    odd = await client.request("PROPFIND", f"/api/v1/namespaces/{api.namespace}/ghosts")
    made_up = await client.request("BREW", "/healthz")
    after = await scrape(client)
    assert (odd.status_code, made_up.status_code) == (405, 405)
    assert GENERATED.fullmatch(odd.headers["x-request-id"])
    assert odd.json() == status_body(
        405, "MethodNotAllowed", "the method is not allowed on this path"
    )
    assert moved(before, after, REQUESTS) == {
        ("OTHER", UNROUTED, "405"): 2,
        METRICS: 1,
    }


async def test_refusals_carry_a_request_id_and_are_counted_by_reason(
    client: httpx.AsyncClient, api: Api, settings: object
) -> None:
    before = await scrape(client)
    too_large = await client.post(
        f"/api/v1/namespaces/{api.namespace}/ghosts",
        content=b"x" * (1024 * 1024 + 1),
        headers={**api.account.headers, "Content-Type": "application/json"},
    )
    bad_query = await client.get(
        f"/api/v1/namespaces/{api.namespace}/ghosts?limit=1&limit=2",
        headers={**api.account.headers, "X-Request-ID": "client-id-7"},
    )
    after = await scrape(client)
    assert too_large.status_code == 413
    assert too_large.json() == status_body(
        413, "RequestEntityTooLarge", "the request body is too large"
    )
    assert GENERATED.fullmatch(too_large.headers["x-request-id"])
    assert bad_query.status_code == 400
    assert bad_query.json() == status_body(
        400, "BadRequest", "query parameter limit is given more than once"
    )
    assert bad_query.headers["x-request-id"] == "client-id-7"
    assert moved(before, after, REFUSED) == {("too_large",): 1, ("bad_query",): 1}
    assert moved(before, after, REQUESTS) == {
        ("POST", UNROUTED, "413"): 1,
        ("GET", UNROUTED, "400"): 1,
        METRICS: 1,
    }


async def test_busy_refusals_carry_a_request_id_and_are_counted(
    client: httpx.AsyncClient, make_database: MakeDatabase, tmp_path: Path
) -> None:
    """With ``WEGENT_MAX_IN_FLIGHT=1`` and one request held by a row lock, the next is 503."""
    url = await make_database()
    async with started(make_settings(url, tmp_path, max_in_flight=1)) as (own, http):
        account = await register(http)
        api = Api(http, account, account.username, "B")
        await api.must_create("ghosts", ghost("locked"))
        before = await scrape(client)  # the same process's registry, through the session app
        holder = await asyncpg.connect(url)
        try:
            async with holder.transaction():
                await holder.execute(
                    "SELECT 1 FROM kinds WHERE namespace = $1 AND name = 'locked' FOR UPDATE",
                    account.username,
                )
                held = asyncio.create_task(api.replace("ghosts", "locked", ghost("locked", "x")))
                deadline = time.monotonic() + 10
                while own.front.in_flight.count < 1:  # type: ignore[attr-defined]
                    assert time.monotonic() < deadline, "the held request never started"
                    await asyncio.sleep(0.01)
                busy = await http.get(
                    f"/api/v1/namespaces/{account.username}/ghosts",
                    headers={**account.headers, "X-Request-ID": "busy-1"},
                )
        finally:
            await holder.close()
        assert (await held).status_code == 200
        after = await scrape(client)
    assert busy.status_code == 503
    assert busy.json() == status_body(503, "ServiceUnavailable", "the server is busy; retry later")
    assert busy.headers["x-request-id"] == "busy-1"
    assert moved(before, after, REFUSED) == {("busy",): 1}
    assert moved(before, after, REQUESTS) == {
        ("GET", UNROUTED, "503"): 1,
        ("PUT", GHOST, "200"): 1,
        METRICS: 1,
    }


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-123", True),
        ("x" * 128, True),
        ("!~#$%&'*+.^_`|", True),
        ("has space", False),
        ("x" * 129, False),
        ("", False),
        ("caf\u00e9", False),
    ],
)
async def test_a_valid_request_id_is_echoed_an_invalid_one_replaced(
    client: httpx.AsyncClient, api: Api, door: str, given: str, kept: bool
) -> None:
    headers = {"X-Request-ID": given.encode()}
    answers = [
        await client.get(
            f"/api/v1/namespaces/{api.namespace}/ghosts", headers=api.account.headers | headers
        ),  # type: ignore[operator]
        await client.get(f"/api/v1/namespaces/{api.namespace}/ghosts", headers=headers),
        await client.get(
            f"/api/v1/namespaces/{api.namespace}/ghosts/nope", headers=api.account.headers | headers
        ),  # type: ignore[operator]
        await client.post(
            f"/api/v1/namespaces/{api.namespace}/ghosts",
            json={"metadata": {"name": "bad"}, "spec": {}},
            headers=api.account.headers | headers,  # type: ignore[operator]
        ),
        await client.get("/healthz", headers=headers),
    ]
    assert [a.status_code for a in answers] == [200, 401, 404, 422, 200]
    ids = [a.headers.get_list("x-request-id") for a in answers]
    assert all(len(i) == 1 for i in ids), ids  # exactly one, never the client's and a new one
    if kept:
        assert [i[0] for i in ids] == [given] * 5
    else:
        assert all(GENERATED.fullmatch(i[0]) for i in ids), ids
        assert len({i[0] for i in ids}) == 5  # a new one per request


async def test_requests_without_an_id_each_get_a_new_one(client: httpx.AsyncClient) -> None:
    ids = [(await client.get("/healthz")).headers["x-request-id"] for _ in range(3)]
    assert all(GENERATED.fullmatch(i) for i in ids) and len(set(ids)) == 3


async def test_login_failures_and_throttles_are_counted(client: httpx.AsyncClient) -> None:
    account = await register(client)
    wrong = {"username": account.username, "password": "wrong password"}
    before = await scrape(client)
    for _ in range(10):
        assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
    assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 429
    nobody = {"username": unique("nobody"), "password": "whatever"}
    assert (await client.post("/api/v1/auth/login", json=nobody)).status_code == 401
    after = await scrape(client)
    assert (
        value(after, "wegent_login_failures_total") - value(before, "wegent_login_failures_total")
        == 11
    )
    assert (
        value(after, "wegent_login_throttled_total") - value(before, "wegent_login_throttled_total")
        == 1
    )
    assert moved(before, after, REQUESTS) == {
        ("POST", "/api/v1/auth/login", "401"): 11,
        ("POST", "/api/v1/auth/login", "429"): 1,
        METRICS: 1,
    }


async def test_claims_and_expired_leases_are_counted(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    account = await register(client)
    api = Api(client, account, account.username, "B")
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("bots", bot("b", "g"))
    await api.must_create("teams", team("t", "b"))
    for name in ("first", "second", "third"):
        await api.must_create("tasks", task(name))
    claimed, expired = "wegent_tasks_claimed_total", "wegent_task_leases_expired_total"
    before = await scrape(client)
    assert [t["metadata"]["name"] for t in await claim(api, max=2)] == ["first", "second"]
    await expire(conn, api, "first")
    assert [t["metadata"]["name"] for t in await claim(api, executor="ex-2", max=5)] == [
        "first",
        "third",
    ]
    assert await claim(api) == []
    after = await scrape(client)
    assert value(after, claimed) - value(before, claimed) == 4
    assert value(after, expired) - value(before, expired) == 1
    assert moved(before, after, REQUESTS) == {
        ("POST", "/api/v1/tasks/claim", "200"): 3,
        METRICS: 1,
    }


async def test_the_metrics_page_lists_every_metric(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    for name, kind in (
        ("wegent_http_requests_total", "counter"),
        ("wegent_http_request_duration_seconds", "histogram"),
        ("wegent_http_requests_in_flight", "gauge"),
        ("wegent_http_requests_refused_total", "counter"),
        ("wegent_db_pool_connections_in_use", "gauge"),
        ("wegent_db_pool_connections_idle", "gauge"),
        ("wegent_db_pool_waiting", "gauge"),
        ("wegent_watch_streams_open", "gauge"),
        ("wegent_watch_events_sent_total", "counter"),
        ("wegent_login_failures_total", "counter"),
        ("wegent_login_throttled_total", "counter"),
        ("wegent_tasks_claimed_total", "counter"),
        ("wegent_task_leases_expired_total", "counter"),
        ("wegent_build_info", "gauge"),
    ):
        assert f"\n# TYPE {name} {kind}\n" in text, name
    values = parse(text)
    build = {k[1] for k in values if k[0] == "wegent_build_info"}
    assert build == {(("python", platform.python_version()), ("version", __version__))}
    assert (
        value(values, "wegent_db_pool_connections_idle")
        + value(values, "wegent_db_pool_connections_in_use")
        >= 1
    )


async def test_metrics_off_is_a_404_and_records_nothing(
    client: httpx.AsyncClient,
    make_database: MakeDatabase,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = await make_database()
    off = make_settings(url, tmp_path, metrics=False, access_log=True)
    async with started(off) as (_, http):
        before = await scrape(client)
        caplog.handler.addFilter(RequestIdFilter())
        with caplog.at_level(logging.INFO, logger="wegent.access"):
            hidden = await http.get("/metrics", headers={"X-Request-ID": "off-1"})
            probe = await http.get("/healthz", headers={"X-Request-ID": "off-2"})
        after = await scrape(client)
    assert hidden.status_code == 404
    assert hidden.json() == status_body(
        404, "NotFound", "metrics are off on this server (WEGENT_METRICS)"
    )
    assert (hidden.headers["x-request-id"], probe.headers["x-request-id"]) == ("off-1", "off-2")
    # Nothing recorded: the only move is the session app's own first reading.
    assert moved(before, after, REQUESTS) == {METRICS: 1}
    assert moved(before, after, LATENCY_COUNT) == {METRICS: 1}
    # The access log stays: one line each, with the request's id.
    lines = [(r.request_id, r.route, r.status) for r in caplog.records if r.name == "wegent.access"]  # type: ignore[attr-defined]
    assert lines == [("off-1", "/metrics", 404), ("off-2", "/healthz", 200)]


async def test_a_metrics_token_is_required_when_set(
    make_database: MakeDatabase, tmp_path: Path
) -> None:
    token = "metrics-token-0123456789"
    url = await make_database()
    async with started(make_settings(url, tmp_path, metrics_token=token)) as (_, http):
        missing = await http.get("/metrics")
        wrong = await http.get(
            "/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}
        )
        basic = await http.get("/metrics", headers={"Authorization": f"Basic {token}"})
        right = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401
        assert refused.json() == status_body(401, "Unauthorized", "authentication required")
        assert refused.headers["www-authenticate"] == "Bearer"
        assert GENERATED.fullmatch(refused.headers["x-request-id"])
    assert right.status_code == 200
    assert "wegent_http_requests_total" in right.text
    # A user's login token is not the metrics token.
    assert token not in right.text


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "framework"])
async def test_a_log_line_written_during_a_request_carries_its_id(
    make_database: MakeDatabase, tmp_path: Path, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement timeout is logged while its request is answered (``wegent.api.errors``):
    the record gets the request's id from the filter the service's logging config installs
    (``wegent.logs``), whichever door answered."""
    # That log writes one line a second at most: a fresh one, so that an outage line of an
    # earlier test in this process cannot hold this one back.
    monkeypatch.setattr(api_errors, "_outage_log", api_errors._RateLimitedLog(api_errors.log))
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    keep.addFilter(RequestIdFilter())
    logger = logging.getLogger("wegent")
    url = await make_database()
    settings = make_settings(url, tmp_path, statement_timeout_ms=200)
    async with started(settings) as (own, http):
        own.front.fast = fast  # type: ignore[attr-defined]
        account = await register(http)
        api = Api(http, account, account.username, "B")
        await api.must_create("ghosts", ghost("locked"))
        holder = await asyncpg.connect(url)
        logger.addHandler(keep)
        try:
            async with holder.transaction():
                await holder.execute(
                    "SELECT 1 FROM kinds WHERE namespace = $1 AND name = 'locked' FOR UPDATE",
                    account.username,
                )
                timed_out = await api.replace(
                    "ghosts", "locked", ghost("locked", "x"), headers={"X-Request-ID": "log-id-1"}
                )
        finally:
            logger.removeHandler(keep)
            await holder.close()
    assert timed_out.status_code == 503
    assert timed_out.headers["x-request-id"] == "log-id-1"
    logged = [(r.getMessage(), r.request_id) for r in records]  # type: ignore[attr-defined]
    assert ("statement timeout: QueryCanceledError", "log-id-1") in logged, logged


def test_the_tls_supervisor_waits_for_a_draining_worker() -> None:
    """With several workers and HTTPS (``wegent.serve``), a worker told to stop drains for
    ``WEGENT_SHUTDOWN_DELAY_S``, then shuts down gracefully: it is killed only after both."""
    config = uvicorn.Config(app="wegent.app:create_app", timeout_graceful_shutdown=30)
    assert serve.stop_within(config, 0) == 40
    assert serve.stop_within(config, 45) == 85
