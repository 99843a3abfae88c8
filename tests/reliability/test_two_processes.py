"""Scale-out (issue #21 item 6, docs/deploy.md): two ``wegent serve`` processes over one
PostgreSQL behave as one service.

Both processes are started together on one fresh database (their migrations serialise on the
advisory lock) and shared by the module's tests. A client talks to each process directly, as a
load balancer would send its requests to either:

- a write through one process is read through the other (GET, list, optimistic concurrency);
- what one signs or seals with the shared secrets the other opens (login and continue tokens,
  model secrets);
- concurrent creates of one name sent to both have exactly one winner (201), the others 409
  ``AlreadyExists`` (the partial unique index decides), round after round; usernames too;
- resourceVersions taken through both processes are unique and increasing (one sequence);
- failed logins alternated across the processes are counted together: the 11th from one
  address is 429, and the account-wide ceiling of 100 across addresses holds as well;
  each process's ``/metrics`` counts only the logins it answered;
- disabling a user through one process refuses its login token and its API tokens on the
  other within the caches' time to live (``WEGENT_AUTH_CACHE_TTL_S``, 2 s here); so does
  revoking a token, and adding or removing a namespace member;
- a watch opened on one process sees the changes written through the other;
- each process holds one watch connection and at most ``WEGENT_POOL_MAX_SIZE`` pooled ones;
- a process that is stopped answers ``/readyz`` 503 while it drains, and the other serves on.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import PASSWORD, Account, status_body, unique
from tests.reliability.harness import API, Service, ghost, unhandled_errors
from wegent.auth.users import MAX_ACCOUNT_FAILURES, MAX_FAILURES

ADMIN = "scale-admin"
POOL_MAX = 4  # WEGENT_POOL_MAX_SIZE of each process
CACHE_TTL_S = 2  # WEGENT_AUTH_CACHE_TTL_S of both: users, roles, API token grants (5 by default)
SHUTDOWN_DELAY_S = 3  # process A's WEGENT_SHUTDOWN_DELAY_S: /readyz is 503 this long first
LOGIN_FAILED = status_body(401, "Unauthorized", "invalid username or password")
UNAUTHENTICATED = status_body(401, "Unauthorized", "authentication required")
THROTTLED = status_body(
    429, "TooManyRequests", "too many failed logins for this account; retry later"
)


@dataclass
class Pair:
    """The two processes and a client of each."""

    a: Service
    b: Service
    http_a: httpx.AsyncClient
    http_b: httpx.AsyncClient
    database_url: str

    @property
    def both(self) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        return self.http_a, self.http_b


@pytest.fixture(scope="module")
async def pair(
    make_database: Callable[[], Awaitable[str]], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pair]:
    """Two service processes over one fresh database, started at the same time."""
    database_url = await make_database()
    folder = tmp_path_factory.mktemp("two-processes")
    common = {
        "WEGENT_ADMIN_USERNAME": ADMIN,
        "WEGENT_ADMIN_PASSWORD": PASSWORD,
        "WEGENT_POOL_MIN_SIZE": "1",
        "WEGENT_POOL_MAX_SIZE": str(POOL_MAX),
        # The balancer's address: its X-Forwarded-For is the client's (docs/deploy.md).
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        # Shorter than the default 5 s: the tests below wait for it, and check that it is obeyed.
        "WEGENT_AUTH_CACHE_TTL_S": str(CACHE_TTL_S),
    }
    a = Service(
        database_url,
        folder / "a",
        env={**common, "WEGENT_SHUTDOWN_DELAY_S": str(SHUTDOWN_DELAY_S)},
    )
    b = Service(database_url, folder / "b", env=common)
    try:
        await asyncio.gather(a.start(), b.start())
        async with (
            a.client(timeout=30) as http_a,
            b.client(timeout=30) as http_b,
        ):
            yield Pair(a, b, http_a, http_b, database_url)
    finally:
        await asyncio.gather(a.stop(), b.stop())


async def login(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    answer = await http.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


async def register(http: httpx.AsyncClient) -> str:
    username = unique("scale")
    answer = await http.post(
        "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
    )
    assert answer.status_code == 201, answer.text
    return username


@pytest.fixture(scope="module")
async def admin(pair: Pair) -> Account:
    """The admin both processes were told to create at start (one of them did)."""
    return Account(ADMIN, await login(pair.http_b, ADMIN))


@pytest.fixture
async def alice(pair: Pair) -> Account:
    """A user registered through process A, logged in through process B."""
    username = await register(pair.http_a)
    return Account(username, await login(pair.http_b, username))


def version(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float, what: str, every: float = 0.05
) -> float:
    """Poll ``check`` until it is true; the seconds it took. Fails after ``within`` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if await check():
            return time.monotonic() - start
        await asyncio.sleep(every)
    raise AssertionError(f"not within {within} s: {what}")


async def test_both_processes_migrated_the_one_database_once(pair: Pair) -> None:
    """They started together on an empty database: the advisory lock let one migrate, the
    other found nothing to do; the admin both were told to create exists once."""
    conn = await asyncpg.connect(pair.database_url)
    try:
        applied = await conn.fetch("SELECT name FROM migration ORDER BY id")
        admins = await conn.fetchval(
            "SELECT count(*) FROM users WHERE username = $1 AND role = 'admin'", ADMIN
        )
    finally:
        await conn.close()
    names = [r["name"] for r in applied]
    assert names and len(names) == len(set(names))
    assert admins == 1
    for http in pair.both:
        assert (await http.get("/readyz")).json() == {"status": "ok"}


async def test_a_write_through_one_process_is_read_through_the_other(
    pair: Pair, alice: Account
) -> None:
    ns = alice.username
    path = f"{API}/{ns}/ghosts"
    made = await pair.http_a.post(path, json=ghost("g1"), headers=alice.headers)
    assert made.status_code == 201, made.text
    obj = made.json()

    got = await pair.http_b.get(f"{path}/g1", headers=alice.headers)
    assert got.status_code == 200
    assert got.json() == obj
    listed = await pair.http_b.get(path, headers=alice.headers)
    assert listed.status_code == 200
    assert listed.json()["items"] == [obj]

    # A replace through B with the version read from A; then A's stale version is a conflict.
    changed = {**obj, "spec": {**obj["spec"], "systemPrompt": "changed on B"}}
    replaced = await pair.http_b.put(f"{path}/g1", json=changed, headers=alice.headers)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["spec"]["systemPrompt"] == "changed on B"
    assert version(replaced.json()) > version(obj)
    stale = await pair.http_a.put(
        f"{path}/g1",
        json={**obj, "spec": {**obj["spec"], "systemPrompt": "stale on A"}},
        headers=alice.headers,
    )
    assert stale.status_code == 409
    assert stale.json() == status_body(
        409,
        "Conflict",
        'Operation cannot be fulfilled on ghosts "g1": the object has been modified; please '
        "apply your changes to the latest version and try again",
        details={"name": "g1", "kind": "Ghost"},
    )
    assert (await pair.http_a.get(f"{path}/g1", headers=alice.headers)).json() == replaced.json()

    deleted = await pair.http_a.delete(f"{path}/g1", headers=alice.headers)
    assert deleted.status_code == 204, deleted.text
    gone = await pair.http_b.get(f"{path}/g1", headers=alice.headers)
    assert gone.status_code == 404
    assert gone.json() == status_body(
        404,
        "NotFound",
        f'Ghost "g1" not found in namespace "{ns}"',
        details={"name": "g1", "kind": "Ghost"},
    )
    assert (await pair.http_b.get(path, headers=alice.headers)).json()["items"] == []


async def test_what_one_process_signs_or_seals_the_other_opens(pair: Pair, alice: Account) -> None:
    """The same WEGENT_JWT_SECRET and WEGENT_SECRET_KEY on both: a login token issued by B
    works on A (the fixture logged alice in through B), a continue token from A pages on B, a
    model secret sealed by A is revealed by B."""
    ns = alice.username
    me = await pair.http_a.get("/api/v1/users/me", headers=alice.headers)
    assert me.status_code == 200
    assert me.json()["username"] == ns

    path = f"{API}/{ns}/ghosts"
    made = []
    for name in ("p1", "p2", "p3"):
        answer = await pair.http_a.post(path, json=ghost(name), headers=alice.headers)
        assert answer.status_code == 201, answer.text
        made.append(answer.json())
    first = await pair.http_a.get(path, params={"limit": "2"}, headers=alice.headers)
    assert first.status_code == 200
    assert first.json()["items"] == made[:2]
    token = first.json()["metadata"]["continue"]
    rest = await pair.http_b.get(
        path, params={"limit": "2", "continue": token}, headers=alice.headers
    )
    assert rest.status_code == 200, rest.text
    assert rest.json()["items"] == made[2:]

    model = {
        "apiVersion": "agent.wecode.io/v1",
        "kind": "Model",
        "metadata": {"name": "m1"},
        "spec": {"modelConfig": {"env": {"API_KEY": "sk-sealed-by-a", "MODEL": "m"}}},
    }
    sealed = await pair.http_a.post(f"{API}/{ns}/models", json=model, headers=alice.headers)
    assert sealed.status_code == 201, sealed.text
    assert sealed.json()["spec"]["modelConfig"]["env"] == {"API_KEY": "***", "MODEL": "m"}
    revealed = await pair.http_b.get(
        f"{API}/{ns}/models/m1", params={"reveal": "true"}, headers=alice.headers
    )
    assert revealed.status_code == 200, revealed.text
    assert revealed.json()["spec"]["modelConfig"]["env"] == {
        "API_KEY": "sk-sealed-by-a",
        "MODEL": "m",
    }


async def test_concurrent_creates_of_one_name_have_one_winner(pair: Pair, alice: Account) -> None:
    """Two creates of the same name through each process at once, 40 rounds: exactly one 201,
    three 409 AlreadyExists, and both processes then read the winner."""
    ns = alice.username
    path = f"{API}/{ns}/ghosts"
    clients = [pair.http_a, pair.http_b, pair.http_a, pair.http_b]
    for round_ in range(40):
        name = f"race-{round_}"
        answers = await asyncio.gather(
            *(
                http.post(path, json=ghost(name, f"contender {i}"), headers=alice.headers)
                for i, http in enumerate(clients)
            )
        )
        statuses = [r.status_code for r in answers]
        assert sorted(statuses) == [201, 409, 409, 409], [r.text for r in answers]
        won = statuses.index(201)
        for lost in (r for r in answers if r.status_code == 409):
            assert lost.json() == status_body(
                409,
                "AlreadyExists",
                f'Ghost "{name}" already exists in namespace "{ns}"',
                details={"name": name, "kind": "Ghost"},
            )
        winner = answers[won].json()
        assert winner["spec"]["systemPrompt"] == f"contender {won}"
        for http in pair.both:
            assert (await http.get(f"{path}/{name}", headers=alice.headers)).json() == winner
    listed = (await pair.http_b.get(path, headers=alice.headers)).json()["items"]
    assert [item["metadata"]["name"] for item in listed] == sorted(f"race-{i}" for i in range(40))


async def test_concurrent_registrations_of_one_name_have_one_winner(pair: Pair) -> None:
    for _ in range(10):
        username = unique("race")
        body = {"username": username, "password": PASSWORD}
        answers = await asyncio.gather(
            *(http.post("/api/v1/auth/register", json=body) for http in pair.both)
        )
        assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
        lost = next(r for r in answers if r.status_code == 409)
        assert lost.json() == status_body(
            409,
            "AlreadyExists",
            f'the name "{username}" is already taken',
            details={"name": username, "kind": "User"},
        )


async def test_resource_versions_from_both_processes_are_unique_and_increasing(
    pair: Pair, alice: Account
) -> None:
    path = f"{API}/{alice.username}/ghosts"
    taken: list[int] = []
    for i in range(20):  # one after the other, alternating: each above the one before
        http = pair.both[i % 2]
        made = await http.post(path, json=ghost(f"seq-{i}"), headers=alice.headers)
        assert made.status_code == 201, made.text
        taken.append(version(made.json()))
    assert taken == sorted(taken)
    assert len(set(taken)) == len(taken)

    answers = await asyncio.gather(  # at the same time through both: all different
        *(
            pair.both[i % 2].post(path, json=ghost(f"par-{i}"), headers=alice.headers)
            for i in range(20)
        )
    )
    assert [r.status_code for r in answers] == [201] * 20
    parallel = [version(r.json()) for r in answers]
    assert len(set(parallel)) == 20
    assert min(parallel) > max(taken)


def metric(page: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", page, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def login_metrics(http: httpx.AsyncClient) -> tuple[float, float]:
    page = (await http.get("/metrics")).text
    return metric(page, "wegent_login_failures_total"), metric(page, "wegent_login_throttled_total")


async def test_failed_logins_through_both_processes_are_counted_together(pair: Pair) -> None:
    """API.md §11, docs/decisions.md: 10 checked failures per account and client address, 100
    per account across addresses, counted in the database whichever process answers."""
    username = await register(pair.http_a)
    wrong = {"username": username, "password": "wrong password"}
    before = [await login_metrics(http) for http in pair.both]

    for attempt in range(MAX_FAILURES):  # A, B, A, B ...: each one a checked failure
        answer = await pair.both[attempt % 2].post("/api/v1/auth/login", json=wrong)
        assert answer.status_code == 401, (attempt, answer.text)
        assert answer.json() == LOGIN_FAILED
    for http in pair.both:  # the next, on either process, even with the right password
        for password in ("wrong password", PASSWORD):
            answer = await http.post(
                "/api/v1/auth/login", json={"username": username, "password": password}
            )
            assert answer.status_code == 429
            assert answer.json() == THROTTLED
            assert 1 <= int(answer.headers["retry-after"]) <= 15 * 60

    # Each process counted only what it answered: /metrics is per process (docs/deploy.md).
    after = [await login_metrics(http) for http in pair.both]
    assert [a[0] - b[0] for a, b in zip(after, before, strict=True)] == [5, 5]
    assert [a[1] - b[1] for a, b in zip(after, before, strict=True)] == [2, 2]

    # The owner, from another address (the balancer forwards it), is not locked out ...
    elsewhere = {"X-Forwarded-For": "192.0.2.1"}
    ok = await pair.http_b.post(
        "/api/v1/auth/login", json={"username": username, "password": PASSWORD}, headers=elsewhere
    )
    assert ok.status_code == 200, ok.text

    # ... until the account's failures from every address reach the ceiling, through both.
    failures = MAX_FAILURES
    address = 0
    while failures < MAX_ACCOUNT_FAILURES:
        address += 1
        for _ in range(min(MAX_FAILURES - 1, MAX_ACCOUNT_FAILURES - failures)):
            answer = await pair.both[failures % 2].post(
                "/api/v1/auth/login",
                json=wrong,
                headers={"X-Forwarded-For": f"198.51.100.{address}"},
            )
            assert answer.status_code == 401, (failures, answer.text)
            failures += 1
    for http in pair.both:
        answer = await http.post(
            "/api/v1/auth/login",
            json={"username": username, "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.7"},  # an address never seen
        )
        assert answer.status_code == 429
        assert answer.json() == THROTTLED


async def test_disabling_a_user_through_one_process_refuses_it_on_the_other(
    pair: Pair, admin: Account, alice: Account
) -> None:
    """The admin disables alice through A; B, which has her cached as active, refuses her
    login token and her API token within the caches' time to live."""
    made = await pair.http_a.post("/api/v1/tokens", json={"name": "ci"}, headers=alice.headers)
    assert made.status_code == 201, made.text
    api_token = {"Authorization": f"Bearer {made.json()['token']}"}
    for headers in (alice.headers, api_token):  # B has both cached now
        me = await pair.http_b.get("/api/v1/users/me", headers=headers)
        assert me.status_code == 200, me.text
        assert me.json()["username"] == alice.username

    patched = await pair.http_a.patch(
        f"/api/v1/users/{alice.username}", json={"isActive": False}, headers=admin.headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["isActive"] is False
    disabled_at = time.monotonic()

    # A forgets her at once; B within the time to live.
    refused = await pair.http_a.get("/api/v1/users/me", headers=alice.headers)
    assert refused.status_code == 401
    for headers in (alice.headers, api_token):

        async def refused_on_b(headers: dict[str, str] = headers) -> bool:
            answer = await pair.http_b.get("/api/v1/users/me", headers=headers)
            if answer.status_code == 200:
                return False
            assert answer.status_code == 401, answer.text
            assert answer.json() == UNAUTHENTICATED
            assert answer.headers["www-authenticate"] == "Bearer"
            return True

        await eventually(refused_on_b, CACHE_TTL_S + 1 - (time.monotonic() - disabled_at), "B")
    assert time.monotonic() - disabled_at <= CACHE_TTL_S + 1
    for http in pair.both:  # and she cannot log in again through either
        answer = await http.post(
            "/api/v1/auth/login", json={"username": alice.username, "password": PASSWORD}
        )
        assert answer.status_code == 401
        assert answer.json() == LOGIN_FAILED


async def test_membership_changed_through_one_process_is_obeyed_by_the_other(
    pair: Pair, alice: Account
) -> None:
    """Bob is refused in alice's namespace on B (B caches "no role"); alice adds him through
    A: B lets him in within the caches' time to live; she removes him through A: B refuses
    him again within it."""
    bob_name = await register(pair.http_b)
    bob = Account(bob_name, await login(pair.http_b, bob_name))
    ns = unique("team")
    made = await pair.http_a.post("/api/v1/namespaces", json={"name": ns}, headers=alice.headers)
    assert made.status_code == 201, made.text
    path = f"{API}/{ns}/ghosts"
    refused = status_body(
        403,
        "Forbidden",
        f'user "{bob.username}" cannot read in namespace "{ns}"',
        details={"name": ns, "kind": "Namespace"},
    )
    answer = await pair.http_b.get(path, headers=bob.headers)
    assert answer.status_code == 403
    assert answer.json() == refused

    member = f"/api/v1/namespaces/{ns}/members/{bob.username}"
    added = await pair.http_a.put(member, json={"role": "view"}, headers=alice.headers)
    assert added.status_code == 200, added.text

    async def allowed_on_b() -> bool:
        answer = await pair.http_b.get(path, headers=bob.headers)
        if answer.status_code == 403:
            assert answer.json() == refused
            return False
        assert answer.status_code == 200, answer.text
        assert answer.json()["items"] == []
        return True

    await eventually(allowed_on_b, CACHE_TTL_S + 1, "bob let in on B")

    removed = await pair.http_a.delete(member, headers=alice.headers)
    assert removed.status_code == 204, removed.text

    async def refused_on_b() -> bool:
        answer = await pair.http_b.get(path, headers=bob.headers)
        if answer.status_code == 200:
            return False
        assert answer.status_code == 403, answer.text
        assert answer.json() == refused
        return True

    await eventually(refused_on_b, CACHE_TTL_S + 1, "bob refused on B")


async def test_a_token_made_on_one_process_works_on_the_other_until_revoked(
    pair: Pair, alice: Account
) -> None:
    made = await pair.http_a.post("/api/v1/tokens", json={"name": "deploy"}, headers=alice.headers)
    assert made.status_code == 201, made.text
    api_token = {"X-API-Key": made.json()["token"]}
    me = await pair.http_b.get("/api/v1/users/me", headers=api_token)  # at once
    assert me.status_code == 200, me.text
    assert me.json()["username"] == alice.username

    revoked = await pair.http_a.delete("/api/v1/tokens/deploy", headers=alice.headers)
    assert revoked.status_code == 204
    revoked_at = time.monotonic()
    answer = await pair.http_a.get("/api/v1/users/me", headers=api_token)
    assert answer.status_code == 401  # A forgot it at once

    async def refused_on_b() -> bool:
        answer = await pair.http_b.get("/api/v1/users/me", headers=api_token)
        if answer.status_code == 200:
            return False
        assert answer.status_code == 401, answer.text
        assert answer.json() == UNAUTHENTICATED
        return True

    await eventually(refused_on_b, CACHE_TTL_S + 1, "the revoked token refused on B")
    assert time.monotonic() - revoked_at <= CACHE_TTL_S + 1


class Stream:
    """The events of a watch, one JSON object a line."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self, within: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                line = await anext(self._lines)
                if line:
                    return dict(json.loads(line))


async def test_a_watch_on_one_process_sees_writes_through_the_other(
    pair: Pair, alice: Account
) -> None:
    path = f"{API}/{alice.username}/ghosts"
    listed = await pair.http_b.get(path, headers=alice.headers)
    assert listed.status_code == 200
    start = listed.json()["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": start}
    async with pair.http_b.stream("GET", path, params=params, headers=alice.headers) as watch:
        assert watch.status_code == 200
        events = Stream(watch)
        made = await pair.http_a.post(path, json=ghost("w1"), headers=alice.headers)
        assert made.status_code == 201, made.text
        assert await events.next() == {"type": "ADDED", "object": made.json()}
        obj = made.json()
        changed = await pair.http_a.put(
            f"{path}/w1",
            json={**obj, "spec": {**obj["spec"], "systemPrompt": "again"}},
            headers=alice.headers,
        )
        assert changed.status_code == 200, changed.text
        assert await events.next() == {"type": "MODIFIED", "object": changed.json()}
        deleted = await pair.http_a.delete(f"{path}/w1", headers=alice.headers)
        assert deleted.status_code == 204
        event = await events.next()
        assert event["type"] == "DELETED"
        assert event["object"]["metadata"]["name"] == "w1"
        assert version(event["object"]) > version(changed.json())

    # The other way round, resuming on A from a version B's client saw: the log, then live.
    params = {"watch": "true", "resourceVersion": str(version(made.json()))}
    async with pair.http_a.stream("GET", path, params=params, headers=alice.headers) as watch:
        assert watch.status_code == 200
        events = Stream(watch)
        assert await events.next() == {"type": "MODIFIED", "object": changed.json()}
        assert (await events.next())["type"] == "DELETED"
        late = await pair.http_b.post(path, json=ghost("w2"), headers=alice.headers)
        assert late.status_code == 201, late.text
        assert await events.next() == {"type": "ADDED", "object": late.json()}


async def test_each_process_holds_one_watch_connection_and_at_most_its_pool(pair: Pair) -> None:
    """docs/deploy.md's sizing: per worker, WEGENT_POOL_MAX_SIZE pooled connections and the
    watch hub's one (the load above filled the pools)."""
    conn = await asyncpg.connect(pair.database_url)
    try:
        rows = await conn.fetch(
            "SELECT application_name, count(*) AS n FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE 'wegent%' "
            "GROUP BY application_name"
        )
    finally:
        await conn.close()
    counts = {r["application_name"]: r["n"] for r in rows}
    assert counts["wegent-watch"] == 2
    assert 2 <= counts["wegent"] <= 2 * POOL_MAX


async def test_a_stopping_process_drains_while_the_other_serves(pair: Pair, alice: Account) -> None:
    """A rolling restart: SIGTERM makes A's /readyz 503 (the balancer stops sending) for
    WEGENT_SHUTDOWN_DELAY_S before A stops; B answers throughout, with what A wrote."""
    path = f"{API}/{alice.username}/ghosts"
    made = await pair.http_a.post(path, json=ghost("before-stop"), headers=alice.headers)
    assert made.status_code == 201, made.text
    pair.a.signal(signal.SIGTERM)

    async def draining() -> bool:
        ready = await pair.http_a.get("/readyz")
        if ready.status_code == 200:
            return False
        assert ready.status_code == 503
        assert ready.json() == status_body(503, "ServiceUnavailable", "the server is shutting down")
        return True

    await eventually(draining, SHUTDOWN_DELAY_S, "A's /readyz 503")
    # Meanwhile A still answers what the balancer sends it, and B is ready.
    during = await pair.http_a.get(f"{path}/before-stop", headers=alice.headers)
    assert during.status_code == 200
    assert during.json() == made.json()
    assert (await pair.http_b.get("/readyz")).json() == {"status": "ok"}
    # uvicorn raises the signal again after a clean shutdown (docs/decisions.md).
    assert await pair.a.wait(SHUTDOWN_DELAY_S + 30) == -signal.SIGTERM
    got = await pair.http_b.get(f"{path}/before-stop", headers=alice.headers)
    assert got.status_code == 200
    assert got.json() == made.json()


async def test_no_process_logged_an_unhandled_error(pair: Pair) -> None:
    for service in (pair.a, pair.b):
        assert unhandled_errors(service.stderr()) == [], service.stderr()
