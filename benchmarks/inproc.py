"""App-only CPU per request: the service's ASGI app and the ceilings', called in-process.

No HTTP server and no wrk: each request is a direct ``app(scope, receive, send)`` call from
``--concurrency`` tasks, and the figure is this process's CPU time (``time.process_time``) per
request, which leaves out PostgreSQL and the load generator. It answers "did this change make
the Python side cheaper?" in seconds and with far less noise than a wrk run — a development
tool; the targets are judged by ``run.py`` only. Reads (get, list) are also measured against
the stored-bytes ceiling (``ceiling.py``, ``CEILING_MODE=stored``).

    python benchmarks/inproc.py [--ops get,list,create_ghost,create_bot,replace] [--requests 4000]

``get_c`` and ``list_c`` are GET one and list through family C's paths
(``/apis/agent.wecode.io/v1/namespaces/...``), with the same answers as ``get`` and ``list``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (benchmarks/run.py: the same user and Ghost as the wrk benchmark)
from run import PASSWORD, USER  # noqa: E402

App = Callable[..., Any]
READS = ("get", "list", "get_c", "list_c")  # _c: the same through family C's paths


async def call(
    app: App, method: str, path: str, body: bytes = b"", token: str = "", query: str = ""
) -> tuple[int, bytes]:
    headers = [(b"host", b"localhost"), (b"content-type", b"application/json")]
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    out: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        else:
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["body"]


async def lifespan(app: App) -> tuple[asyncio.Task[None], asyncio.Queue[dict[str, Any]]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].endswith(".failed"):
            raise RuntimeError(message)
        started.set()

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await inbox.put({"type": "lifespan.startup"})
    await started.wait()
    return task, inbox


def ghost(name: str, prompt: str) -> bytes:
    """The Ghost the wrk benchmark sends (``run.ghost``), as a body."""
    return json.dumps(run.ghost(name, prompt)).encode()


class Op:
    def __init__(self, app: App, token: str, base: str) -> None:
        self.app, self.token, self.base = app, token, base
        self.base_c = run.FAMILY_C + base.removeprefix("/api/v1")
        self.n = 0

    async def __call__(self, op: str, worker: int) -> int:
        self.n += 1
        n = self.n
        base = self.base_c if op.endswith("_c") else self.base  # family C or B
        if op in ("get", "get_c"):
            status, _ = await call(
                self.app, "GET", f"{base}/ghosts/seed-{n % 100:04d}", token=self.token
            )
        elif op in ("list", "list_c"):
            status, _ = await call(
                self.app, "GET", f"{base}/ghosts", token=self.token, query="limit=100"
            )
        elif op == "create_ghost":
            name = f"g-{os.getpid()}-{id(self) % 10000}-{n}"
            status, _ = await call(
                self.app, "POST", f"{self.base}/ghosts", ghost(name, "x"), self.token
            )
        elif op == "create_bot":
            name = f"b-{os.getpid()}-{id(self) % 10000}-{n}"
            body = json.dumps(run.bot(name)).encode()
            status, _ = await call(self.app, "POST", f"{self.base}/bots", body, self.token)
        elif op == "replace":
            name = f"seed-{n % 100:04d}"
            status, _ = await call(
                self.app,
                "PUT",
                f"{self.base}/ghosts/{name}",
                ghost(name, f"w{worker} {n}"),
                self.token,
            )
        else:
            raise SystemExit(f"unknown op {op}")
        return status


async def measure(op: Op, name: str, requests: int, concurrency: int) -> float:
    per_task = requests // concurrency
    statuses: dict[int, int] = {}

    async def worker(i: int) -> None:
        for _ in range(per_task):
            status = await op(name, i)
            statuses[status] = statuses.get(status, 0) + 1

    gc.collect()
    cpu = time.process_time()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    cpu = time.process_time() - cpu
    done = per_task * concurrency
    bad = {s: c for s, c in statuses.items() if s >= 300}
    if bad:
        raise SystemExit(f"{name}: non-2xx answers {bad}")
    return cpu / done * 1e6


async def main(args: argparse.Namespace) -> None:
    from wegent.app import create_app
    from wegent.db.embedded import start_embedded, stop_embedded
    from wegent.db.engine import ensure_database
    from wegent.settings import load_settings

    tmp = Path(tempfile.mkdtemp(prefix="wegent-inproc-"))
    server = start_embedded(tmp / "pg")
    try:
        await ensure_database(server.get_uri(), "inproc")
        url = server.get_uri(database="inproc")
        os.environ.update(
            WEGENT_DATABASE_URL=url,
            WEGENT_DATA_DIR=str(tmp / "data"),
            WEGENT_JWT_SECRET=secrets.token_urlsafe(48),
            WEGENT_SECRET_KEY=secrets.token_urlsafe(48),
            WEGENT_ARGON2_PROFILE="test",
            WEGENT_MAX_IN_FLIGHT="100000",
            CEILING_USER=USER,
        )
        if args.service_app:
            module, _, factory = args.service_app.partition(":")
            service = getattr(__import__(module, fromlist=[factory]), factory)()
        else:
            service = create_app(load_settings())
        import ceiling

        apps = {
            "service": service,
            "ceiling": ceiling.Ceiling(ceiling.SQL),
            "stored": ceiling.Ceiling(ceiling.STORED),
        }
        spans = [await lifespan(service)]  # migrates
        await run.sql_execute(url, *ceiling.STORED_SCHEMA)  # before the stored ceiling starts
        spans += [await lifespan(apps[name]) for name in ("ceiling", "stored")]
        register = json.dumps({"username": USER, "password": PASSWORD}).encode()
        status, body = await call(service, "POST", "/api/v1/auth/register", register)
        assert status == 201, body
        status, body = await call(service, "POST", "/api/v1/auth/login", register)
        token = json.loads(body)["access_token"]
        base = f"/api/v1/namespaces/{USER}"
        model = {
            "kind": "Model",
            "metadata": {"name": run.MODEL},
            "spec": {"modelConfig": {"env": {"model": "claude", "base_url": "http://127.0.0.1"}}},
        }
        status, body = await call(
            service, "POST", f"{base}/models", json.dumps(model).encode(), token
        )
        assert status == 201, body
        for i in range(101):
            status, body = await call(
                service, "POST", f"{base}/ghosts", ghost(f"seed-{i:04d}", "s"), token
            )
            assert status == 201, body
        copy = [*ceiling.STORED_COPY, f"VACUUM ANALYZE {ceiling.STORED_TABLE}"]
        for name in args.ops.split(","):
            read = name in READS
            if read:  # the stored answers are the service's current ones
                await run.sql_execute(url, *copy)
            results: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for label, app in apps.items():
                    if label == "stored" and not read:
                        continue
                    op = Op(app, token, base)
                    await measure(op, name, args.requests // 4, args.concurrency)  # warm-up
                    cpu = await measure(op, name, args.requests, args.concurrency)
                    results.setdefault(label, []).append(cpu)
            ours, ceil = min(results["service"]), min(results["ceiling"])
            line = (
                f"{name:14s} app CPU µs/req: service {ours:6.1f}  same-SQL ceiling {ceil:6.1f}"
                f"  ratio {ceil / ours:.2f}"
            )
            if "stored" in results:
                stored = min(results["stored"])
                line += f"  stored-bytes ceiling {stored:6.1f}  ratio {stored / ours:.2f}"
            print(line)
        for task, inbox in spans:
            await inbox.put({"type": "lifespan.shutdown"})
            await asyncio.wait_for(task, 10)
    finally:
        stop_embedded(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default="get,list,create_ghost,replace")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--service-app", help="MODULE:FACTORY instead of wegent.app:create_app")
    import uvloop

    uvloop.run(main(parser.parse_args()))
