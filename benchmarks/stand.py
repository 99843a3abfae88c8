"""A service on a database of its own, for the single-purpose benchmarks (list_scale, overload):
started through ``run.Stack`` so that everything stops and is removed whatever happens."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

from run import LUA, MODEL, USER, Bench, Stack, free_port, seed, wait_healthy


@dataclass
class Stand:
    url: str  # the database's DSN
    port: int
    proc: Popen[bytes]
    db_pid: int
    token: str

    def bench(self, wrk: str, seeds: int) -> Bench:
        env = {
            **os.environ,
            "WB_TOKEN": self.token,
            "WB_NS": USER,
            "WB_SEEDS": str(seeds),
            "WB_MODEL": MODEL,
            "WB_LUA": str(LUA),
        }
        pids = {"service": self.proc.pid, "db": self.db_pid}
        return Bench(wrk, 2, env, {"service": self.port}, pids)


def stand_up(stack: Stack, name: str, seeds: int) -> Stand:
    """Embedded PostgreSQL, ``wegent serve`` on a free port, a user with ``seeds`` Ghosts."""
    from wegent.db.embedded import start_embedded, stop_embedded
    from wegent.db.engine import ensure_database

    tmp = Path(tempfile.mkdtemp(prefix=f"wegent-{name}-"))
    stack.cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    server = start_embedded(tmp / "pg")
    stack.cleanups.append(lambda: stop_embedded(server))
    database = f"wegent_{name}"
    asyncio.run(ensure_database(server.get_uri(), database))
    url = server.get_uri(database=database)
    env = {
        **os.environ,
        "WEGENT_DATABASE_URL": url,
        "WEGENT_DATA_DIR": str(tmp / "data"),
        "WEGENT_JWT_SECRET": secrets.token_urlsafe(48),
        "WEGENT_SECRET_KEY": secrets.token_urlsafe(48),
        "WEGENT_ARGON2_PROFILE": "test",
    }
    port = free_port()
    log = tmp / "service.log"
    proc = stack.spawn([sys.executable, "-m", "wegent.cli", "serve", "--port", str(port)], env, log)
    wait_healthy(port, proc, log)
    token, _ = seed(port, seeds)  # the login token (seed also makes an API token)
    return Stand(url, port, proc, server.get_pid() or 0, token)
