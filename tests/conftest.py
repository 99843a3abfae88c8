"""One real PostgreSQL per test session: ``WEGENT_TEST_DATABASE_URL`` or the embedded server.

Each session works in a database of its own, created here and dropped at the end; tests isolate
themselves with unique names rather than by sharing state.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from coverage import Coverage
from litestar import Litestar

from tests.helpers import PASSWORD, PREPARED_STATEMENTS, Account, login, register, unique
from wegent.app import create_app
from wegent.db.embedded import ServerHandle, start_embedded, stop_embedded
from wegent.settings import Settings

TEST_SECRET = "t" * 48
TEST_KEY = "k" * 48


def with_database(url: str, name: str) -> str:
    """The same DSN pointing at database ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """Coverage's tracer off in this thread and in the threads it starts meanwhile."""
    tracer, thread_tracer = sys.gettrace(), threading.gettrace()
    sys.settrace(None)
    threading.settrace(None)  # type: ignore[arg-type]
    try:
        yield
    finally:
        threading.settrace(thread_tracer)  # type: ignore[arg-type]
        sys.settrace(tracer)


def measured(node: pytest.Item | pytest.Collector) -> bool:
    """False for what a ``not_measured`` test runs, when coverage is measuring at all."""
    return node.get_closest_marker("not_measured") is None or Coverage.current() is None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """A ``not_measured`` test runs without coverage's tracer: its setup, call and teardown,
    and the threads it starts (docs/fuzzing.md says why ``tests/test_fuzz.py`` is one)."""
    if measured(item):
        return (yield)
    with untraced():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Collecting the tests of a ``not_measured`` module is not measured either (its import
    is: the module's marks are known only once it is imported)."""
    if measured(collector):
        return (yield)
    with untraced():
        return (yield)


def pytest_configure(config: pytest.Config) -> None:
    """The workers of one run share one hash seed (a new one each run, as in one process).

    pytest-xdist needs every worker to collect the same tests in the same order, and the order
    of ``tests/test_fuzz.py``'s tests follows the OpenAPI document's paths, where the paths of
    one handler (``/api/auth/login`` and ``/api/v1/auth/login``) come in the order of a set.
    The workers inherit the environment of the process that starts them, this one.
    """
    if not hasattr(config, "workerinput"):  # not a worker: the controller, or one process
        os.environ.setdefault("PYTHONHASHSEED", str(random.SystemRandom().randint(1, 2**32 - 1)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each of schemathesis's tests gets a nodeid of its own (``…::test_api[GET /healthz]``).

    pytest 9.2 builds an item's nodeid from its ``originalname`` and its parametrization, and
    schemathesis names the operation in ``name`` only, so all of ``tests/test_fuzz.py``'s tests
    had the nodeid ``tests/test_fuzz.py::test_api``: pytest-xdist, which schedules tests by
    nodeid, ran one of them, and ``--durations`` or JUnit reports did not say which.
    """
    for item in items:
        wanted = f"{item.parent.nodeid}::{item.name}" if item.parent else item.nodeid
        if getattr(item, "operation_label", None) and item.nodeid != wanted:
            item._id = type(item._id).parse(wanted)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ServerHandle | None]:
    """The embedded server for the session, unless an external one is configured."""
    if os.environ.get("WEGENT_TEST_DATABASE_URL"):
        yield None
        return
    data_dir = Path(tempfile.gettempdir()) / "wegent-test-pg"
    server = start_embedded(data_dir)
    yield server
    stop_embedded(server)


@pytest.fixture(scope="session")
def admin_url(pg_server: ServerHandle | None) -> str:
    """A DSN with the right to create databases."""
    if pg_server is None:
        return os.environ["WEGENT_TEST_DATABASE_URL"]
    return pg_server.get_uri()


@pytest.fixture(scope="session")
async def make_database(admin_url: str) -> AsyncIterator[object]:
    """A factory of fresh empty databases, all dropped at the end of the session."""
    created: list[str] = []

    async def make() -> str:
        name = f"wegent_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return with_database(admin_url, name)

    yield make
    conn = await asyncpg.connect(admin_url)
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def make_settings(database_url: str | None, data_dir: Path, **overrides: object) -> Settings:
    """Settings for tests: a given database, fixed secrets, the cheap argon2 profile."""
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "jwt_secret": TEST_SECRET,
        "secret_key": TEST_KEY,
        "argon2_profile": "test",
        "pool_min_size": 1,
        "pool_max_size": 8,
        "db_connect_timeout_s": 2.0,
        # The authorization matrix makes a shared namespace per route for one user.
        "max_namespaces_per_user": 1000,
        "db_prepared_statements": PREPARED_STATEMENTS,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def database_url(make_database: object) -> str:
    """The session's main database (migrated by the app's lifespan)."""
    return await make_database()  # type: ignore[operator, no-any-return]


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(database_url, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """One client, one app lifespan and one pool for the session, all on the test loop."""
    async with (
        LifespanManager(app, startup_timeout=60),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://wegent.test"
        ) as http,
    ):
        yield http


@pytest.fixture
async def conn(client: httpx.AsyncClient, app: Litestar) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection to the session database, for reading and arranging rows directly."""
    async with app.state.db.pool.acquire() as connection:
        yield connection


@pytest.fixture(scope="session")
async def admin(client: httpx.AsyncClient, app: Litestar) -> Account:
    """A global admin, created the way ``wegent create-admin`` does."""
    name = unique("admin")
    await app.state.services.users.ensure_admin(name, PASSWORD, reset=True)
    return await login(client, name)


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Account:
    return await register(client)


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> Account:
    return await register(client)


@pytest.fixture(params=["fast", "framework"])
def door(request: pytest.FixtureRequest, app: Litestar) -> Iterator[str]:
    """The resource API through its fast door, then with it off (the framework's routes answer
    alone): modules that use this run every test through both (``wegent.api.front``)."""
    front = app.front  # type: ignore[attr-defined]
    front.fast = request.param == "fast"
    yield str(request.param)
    front.fast = True
