"""Metrics, logs and draining of a real ``wegent serve`` with two workers (API.md §18).

One server for the module: ``WEGENT_WORKERS=2`` (the metrics kept in files of one directory,
added up by whichever worker answers ``/metrics``), JSON logs with the access log on, and a
shutdown delay of 3 s. Its tests run in the file's order: the last one stops it with SIGTERM.

Which worker holds a connection is read from ``/proc``: the server side of the connection is a
socket whose inode one worker has among its open files.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import status_body, unique
from tests.k8s.conftest import serve_tls
from tests.metrics_text import LATENCY_COUNT, REQUESTS, Key, moved, parse, value
from tests.reliability.harness import Service, ghost

MakeDatabase = Callable[[], Awaitable[str]]
GHOST = "/api/v1/namespaces/{namespace}/ghosts/{name}"
IN_FLIGHT = "wegent_http_requests_in_flight"
DELAY_S = 3
STARTED = re.compile(r"Started server process \[(\d+)\]")


@pytest.fixture(scope="module")
async def database(make_database: MakeDatabase) -> str:
    return await make_database()


@pytest.fixture(scope="module")
async def server(database: str) -> AsyncIterator[Service]:
    folder = Path(tempfile.mkdtemp(prefix="wegent-observe-"))
    service = Service(
        database,
        folder,
        env={
            "WEGENT_WORKERS": "2",
            "WEGENT_LOG_FORMAT": "json",
            "WEGENT_ACCESS_LOG": "true",
            "WEGENT_SHUTDOWN_DELAY_S": str(DELAY_S),
        },
    )
    await service.start(within=90)
    try:
        await until(lambda: ready_workers(service) == 2, within=60)
        yield service
    finally:
        await service.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
async def user(server: Service) -> dict[str, str]:
    """A user with a Ghost ``g``: its name, password and login token."""
    password = f"pw-{secrets.token_hex(12)}"
    name = unique("obs")
    async with server.client(timeout=30) as http:
        made = await http.post(
            "/api/v1/auth/register", json={"username": name, "password": password}
        )
        assert made.status_code == 201, made.text
        login = await http.post("/api/v1/auth/login", json={"username": name, "password": password})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        created = await http.post(
            f"/api/v1/namespaces/{name}/ghosts",
            json=ghost("g"),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201, created.text
    return {"name": name, "password": password, "token": token}


def log_lines(service: Service) -> list[dict[str, Any]]:
    """Every line the server wrote to stderr, each parsed as JSON (a line that is not JSON fails
    the test)."""
    lines = []
    text = service.stderr()
    complete = text[: text.rfind("\n") + 1]  # a line being written is not one yet
    for line in complete.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            pytest.fail(f"a log line is not JSON: {line!r}")
        assert isinstance(parsed, dict), line
        lines.append(parsed)
    return lines


def workers(service: Service) -> list[int]:
    """The pids of the live worker processes, from their "Started server process" lines."""
    pids = []
    for line in log_lines(service):
        found = STARTED.fullmatch(line["message"])
        if found and _alive(int(found.group(1))):
            pids.append(int(found.group(1)))
    return pids


def ready_workers(service: Service) -> int:
    """How many workers are alive and serving: ``/readyz`` answers once the first is."""
    lines = log_lines(service)
    started = sum(1 for x in lines if STARTED.fullmatch(x["message"]))
    complete = sum(1 for x in lines if x["message"] == "Application startup complete.")
    return len(workers(service)) if complete >= started else 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def owner(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """The worker whose socket is the server side of the connection from ``client_port``."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":")[1], fields[2].split(":")[1]
        if int(local, 16) == server_port and int(remote, 16) == client_port:
            inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return pid
    return None


def owner_within(server: Service, conn: http.client.HTTPConnection, pids: list[int]) -> int:
    """Whom ``conn`` is connected to, once a worker has accepted it (within 10 s)."""
    client_port = conn.sock.getsockname()[1]
    deadline = time.monotonic() + 10
    while (found := owner(server.port, client_port, pids)) is None:
        assert time.monotonic() < deadline, "no worker accepted the connection"
        time.sleep(0.01)
    return found


def scrape(server: Service) -> dict[Key, float]:
    answer = httpx.get(f"{server.base_url}/metrics", timeout=30)
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


async def test_counts_add_up_across_two_workers(server: Service, user: dict[str, str]) -> None:
    """Requests on new connections until both workers answered ten: ``/metrics`` from either
    worker counts every one of them."""
    pids = workers(server)
    assert len(pids) == 2, pids
    path = f"/api/v1/namespaces/{user['name']}/ghosts/g"
    headers = {"Authorization": f"Bearer {user['token']}"}
    before = scrape(server)
    served = dict.fromkeys(pids, 0)
    sent = 0
    while min(served.values()) < 10:
        assert sent < 1000, f"one worker answered nearly every connection: {served}"
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            conn.connect()
            conn.request("GET", path, headers=headers)
            answer = conn.getresponse()
            assert answer.status == 200, answer.read()
            answer.read()
            served[owner_within(server, conn, pids)] += 1
            sent += 1
        finally:
            conn.close()
    scrapes = [scrape(server) for _ in range(6)]  # new connections: both workers answer some
    for after in scrapes:
        assert (
            value(after, REQUESTS, method="GET", route=GHOST, status="200")
            - value(before, REQUESTS, method="GET", route=GHOST, status="200")
            == sent
        )
    counted = moved(before, scrapes[-1], LATENCY_COUNT)
    assert counted == {("GET", GHOST, "200"): sent, ("GET", "/metrics", "200"): 6}


class Held:
    """A request sent on a connection of its own, its answer read later (in a thread)."""

    def __init__(self, server: Service, method: str, path: str, body: bytes, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        self.conn.connect()
        self.conn.request(
            method,
            path,
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )

    def answer(self) -> int | None:
        """The answer's status, or None when the connection broke."""
        try:
            response = self.conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            self.conn.close()


async def test_a_killed_workers_gauges_stop_counting(
    server: Service, user: dict[str, str], database: str
) -> None:
    """Requests held by a row lock in both workers show in ``wegent_http_requests_in_flight``;
    after one worker is killed (SIGKILL, no chance to tidy up), the gauge no longer adds its
    share, and the other worker's held requests still complete."""
    pids = workers(server)
    assert len(pids) == 2, pids
    name = user["name"]
    path = f"/api/v1/namespaces/{name}/ghosts/g"
    body = json.dumps(ghost("g", "held")).encode()
    holder = await asyncpg.connect(database)
    held: dict[int, list[Held]] = {pid: [] for pid in pids}
    try:
        async with holder.transaction():
            await holder.execute(
                "SELECT 1 FROM kinds WHERE namespace = $1 AND name = 'g' FOR UPDATE", name
            )
            while min(len(h) for h in held.values()) < 2:
                assert sum(len(h) for h in held.values()) < 40, "one worker took every request"
                request = Held(server, "PUT", path, body, user["token"])
                held[owner_within(server, request.conn, pids)].append(request)
            total = sum(len(h) for h in held.values())
            # Sampled every second; the reading's own request is in flight too.
            await until(lambda: value(scrape(server), IN_FLIGHT) == total + 1)
            victim, survivor = pids
            os.kill(victim, signal.SIGKILL)
            lost = await asyncio.gather(*(asyncio.to_thread(h.answer) for h in held[victim]))
            assert lost == [None] * len(held[victim])
            await until(lambda: value(scrape(server), IN_FLIGHT) == len(held[survivor]) + 1)
        kept = await asyncio.gather(*(asyncio.to_thread(h.answer) for h in held[survivor]))
        assert kept == [200] * len(held[survivor])
    finally:
        await holder.close()
        for request in (r for h in held.values() for r in h):
            request.conn.close()
    # The supervisor starts a new worker in its place.
    await until(lambda: ready_workers(server) == 2 and victim not in workers(server), within=60)
    await until(lambda: value(scrape(server), IN_FLIGHT) == 1)


async def until(check: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.05)


async def test_json_logs_carry_the_request_id_and_no_secret(
    server: Service, user: dict[str, str]
) -> None:
    """Requests carrying every kind of secret: a password (register, login, a failed login), a
    login JWT, an API token as a bearer token and in X-API-Key, a Model's secret env value,
    a secret in a query string. The access line of each names its id, and no secret string
    appears in any line."""
    name, token = user["name"], user["token"]
    login = {"Authorization": f"Bearer {token}"}
    other_password = f"other-pw-{secrets.token_hex(12)}"
    wrong_password = f"wrong-pw-{secrets.token_hex(12)}"
    model_secret = f"sk-ant-{secrets.token_hex(16)}"
    query_secret = f"q-{secrets.token_hex(12)}"
    other = unique("obs")
    async with server.client(timeout=30) as http:

        async def call(method: str, url: str, request_id: str, **kw: Any) -> httpx.Response:
            headers = {"X-Request-ID": request_id, **kw.pop("headers", {})}
            return await http.request(method, url, headers=headers, **kw)

        register = {"username": other, "password": other_password}
        assert (
            await call("POST", "/api/v1/auth/register", "r-1", json=register)
        ).status_code == 201
        assert (await call("POST", "/api/v1/auth/login", "r-2", json=register)).status_code == 200
        bad = {"username": other, "password": wrong_password}
        assert (await call("POST", "/api/v1/auth/login", "r-3", json=bad)).status_code == 401
        made = await call("POST", "/api/v1/tokens", "r-4", json={"name": "ci"}, headers=login)
        assert made.status_code == 201, made.text
        api_token = made.json()["token"]
        assert api_token.startswith("wg-")
        model = {
            "apiVersion": "agent.wecode.io/v1",
            "kind": "Model",
            "metadata": {"name": "m"},
            "spec": {"modelConfig": {"env": {"ANTHROPIC_API_KEY": model_secret}}},
        }
        models = f"/api/v1/namespaces/{name}/models"
        bearer = {"Authorization": f"Bearer {api_token}"}
        created = await call("POST", models, "r-5", json=model, headers=bearer)
        assert created.status_code == 201, created.text
        read = await call("GET", f"{models}/m", "r-6", headers={"X-API-Key": api_token})
        assert read.status_code == 200
        assert read.json()["spec"]["modelConfig"]["env"]["ANTHROPIC_API_KEY"] == "***"
        listed = await call(
            "GET", f"{models}?labelSelector=x%3D{query_secret}", "r-7", headers=login
        )
        assert listed.status_code == 200
        assert (await call("GET", f"/healthz?token={query_secret}", "r-8")).status_code == 200
    secrets_sent = {
        "a password": user["password"],
        "another password": other_password,
        "a wrong password": wrong_password,
        "a login JWT": token,
        "a login JWT's signature": token.rsplit(".", 1)[1],
        "an API token": api_token,
        "an API token's secret part": api_token.removeprefix("wg-"),
        "a Model's secret": model_secret,
        "a query string's value": query_secret,
    }

    def access(request_id: str) -> dict[str, Any] | None:
        found = [x for x in log_lines(server) if x.get("request_id") == request_id]
        return found[0] if found else None

    await until(lambda: access("r-8") is not None)  # the last line is written
    text = server.stderr()
    for what, secret in secrets_sent.items():
        assert secret not in text, what
    lines = log_lines(server)
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= line.keys(), line
    expected = {
        "r-1": ("POST", "/api/v1/auth/register", 201, None, None),
        "r-2": ("POST", "/api/v1/auth/login", 200, None, None),
        "r-3": ("POST", "/api/v1/auth/login", 401, None, None),
        "r-4": ("POST", "/api/v1/tokens", 201, name, None),
        "r-5": ("POST", "/api/v1/namespaces/{namespace}/models", 201, name, "ci"),
        "r-6": ("GET", "/api/v1/namespaces/{namespace}/models/{name}", 200, name, "ci"),
        "r-7": ("GET", "/api/v1/namespaces/{namespace}/models", 200, name, None),
        "r-8": ("GET", "/healthz", 200, None, None),
    }
    for request_id, (method, route, status, who, token_name) in expected.items():
        [line] = [x for x in lines if x["request_id"] == request_id]
        assert line["logger"] == "wegent.access"
        assert line["level"] == "info"
        assert (line["method"], line["route"], line["status"]) == (method, route, status)
        assert line.get("user") == who and line.get("token") == token_name, line
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        assert line["path"] == route.replace("{namespace}", name).replace("{name}", "m")
        assert "?" not in line["message"]
    # uvicorn's own lines are JSON too, outside of any request.
    started = [x for x in lines if STARTED.fullmatch(x["message"])]
    assert started and all(x["logger"] == "uvicorn.error" for x in started)
    assert all(x["request_id"] == "-" for x in started)


def test_https_workers_drain_too(database: str) -> None:
    """``wegent serve`` with HTTPS and two workers runs its own supervisor (``wegent.serve``):
    SIGTERM reaches every worker, ``/readyz`` is 503 on both ports within the delay, the
    server exits 0 and no worker had to be killed."""
    folder = Path(tempfile.mkdtemp(prefix="wegent-observe-tls-"))
    env = {"WEGENT_WORKERS": "2", "WEGENT_SHUTDOWN_DELAY_S": str(DELAY_S)}
    draining = status_body(503, "ServiceUnavailable", "the server is shutting down")
    try:
        with serve_tls(database, folder, env=env) as tls:
            with tls.client() as secure, httpx.Client(base_url=tls.http_url, timeout=10) as plain:
                assert secure.get("/readyz").status_code == plain.get("/readyz").status_code == 200
                signalled = time.monotonic()
                tls.process.send_signal(signal.SIGTERM)
                for http in (secure, plain):
                    while (answer := http.get("/readyz")).status_code == 200:
                        assert time.monotonic() - signalled < DELAY_S, "still ready"
                        time.sleep(0.02)
                    assert (answer.status_code, answer.json()) == (503, draining)
            assert tls.process.wait(60) == 0
            assert time.monotonic() - signalled >= DELAY_S
            assert "did not stop; killing it" not in tls.log()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def test_readyz_answers_503_from_sigterm_on_then_the_server_exits_0(
    server: Service,
) -> None:
    """Last: it stops the module's server. ``/readyz`` is 503 on a kept-alive connection and on
    new ones within the shutdown delay, while other requests are still served."""
    async with server.client(timeout=10) as kept:
        assert (await kept.get("/readyz")).status_code == 200
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        draining = status_body(503, "ServiceUnavailable", "the server is shutting down")
        while (answer := await kept.get("/readyz")).status_code == 200:
            assert time.monotonic() - signalled < DELAY_S, "still ready after the delay"
            await asyncio.sleep(0.02)
        assert answer.status_code == 503
        assert answer.json() == draining
        assert "x-request-id" in answer.headers
        assert (await kept.get("/healthz")).status_code == 200  # still serving meanwhile
        for _ in range(4):  # new connections: either worker
            async with server.client(timeout=10) as new:
                fresh = await new.get("/readyz")
            assert (fresh.status_code, fresh.json()) == (503, draining)
        assert time.monotonic() - signalled < DELAY_S
    assert await server.wait(30) == 0
    assert time.monotonic() - signalled >= DELAY_S
    # Every line, to the last one, is still JSON.
    assert log_lines(server)[-1]["message"].startswith("Stopping parent process")
