"""``wegent serve`` with HTTPS: plain HTTP and HTTPS from one app per process (API.md §14).

One uvicorn server per process listens on two sockets, the HTTP one bare and the HTTPS one with
the certificate's SSL context (:class:`DualServer`), so each process has one app, one lifespan
(one connection pool), one set of connections drained at shutdown and one signal handler.
Both sockets are bound here, in the process that runs ``wegent serve``, and handed to the
server; with ``workers > 1`` to each worker process (:func:`supervise`), as uvicorn does with
its single socket. ``docs/decisions.md`` says why this shape.

Without TLS ``wegent serve`` runs ``uvicorn.run`` as before; nothing here is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import socket
import threading
import time
from collections.abc import Generator
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("uvicorn.error")

_spawn = multiprocessing.get_context("spawn")


class ServeError(Exception):
    """The service cannot listen; the message is one line for an operator."""


class DualServer(uvicorn.Server):
    """A uvicorn server over ``[http_socket, https_socket]``: TLS on the second only.

    :meth:`startup` differs from uvicorn's (which gives every socket the same SSL context):
    the lifespan starts first, then both sockets serve the same protocol factory.
    Shutdown is uvicorn's: both listeners close, the connections of both drain, then the
    lifespan ends. A clean shutdown after SIGTERM or SIGINT returns normally (exit status 0)
    instead of raising the signal again, so that the caller's clean-up runs.
    """

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if sockets is None or len(sockets) != 2:
            raise ValueError("DualServer serves exactly [http_socket, https_socket]")
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            raise SystemExit(STARTUP_FAILURE)
        config = self.config

        def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=_loop,
            )

        loop = asyncio.get_running_loop()
        plain, secure = sockets
        self.servers = [
            await loop.create_server(create_protocol, sock=plain, backlog=config.backlog),
            await loop.create_server(
                create_protocol, sock=secure, ssl=config.ssl, backlog=config.backlog
            ),
        ]
        self.started = True

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()  # handled: shut down cleanly, do not die of it


def bind(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) TCP socket, inheritable by worker processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise ServeError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def url(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def run(
    config: uvicorn.Config, sockets: list[socket.socket], workers: int, drain_s: float = 0
) -> int:
    """Serve ``[http_socket, https_socket]`` in this process, or in ``workers`` processes, or
    under the reloader; returns the exit status. ``drain_s``: how long a worker waits after
    SIGTERM before its shutdown starts (``WEGENT_SHUTDOWN_DELAY_S``, ``wegent.app``)."""
    if config.should_reload:
        from uvicorn.supervisors import ChangeReload

        ChangeReload(config, target=DualServer(config).run, sockets=sockets).run()
        return 0
    if workers > 1:
        return supervise(config, sockets, workers, drain_s)
    DualServer(config).run(sockets=sockets)
    return 0


def worker(config: uvicorn.Config, sockets: list[socket.socket]) -> None:
    """The body of one worker process (spawned: ``config`` and ``sockets`` were pickled)."""
    config.configure_logging()
    with contextlib.suppress(KeyboardInterrupt):
        DualServer(config).run(sockets=sockets)


def supervise(
    config: uvicorn.Config, sockets: list[socket.socket], workers: int, drain_s: float = 0
) -> int:
    """Run ``workers`` worker processes over the same sockets until SIGINT or SIGTERM.

    A worker that dies is replaced, unless it failed while starting (its app, database or
    certificate would fail the same way again): then every worker stops and the status is
    uvicorn's start-up failure, 3. At the end each worker gets SIGTERM (a graceful shutdown),
    and SIGKILL if it has not ended within :func:`stop_within`.
    """
    multiprocessing.allow_connection_pickling()  # the sockets travel to the workers
    stop = threading.Event()

    def on_signal(sig: int, frame: FrameType | None) -> None:
        stop.set()

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, on_signal) for sig in handled}
    processes: list[BaseProcess] = []
    status = 0

    def start() -> BaseProcess:
        process = _spawn.Process(target=worker, args=(config, sockets), daemon=False)
        process.start()
        log.info("Started worker process [%s]", process.pid)
        return process

    try:
        processes = [start() for _ in range(workers)]
        while not stop.is_set():
            wait([p.sentinel for p in processes], timeout=0.5)
            for index, process in enumerate(processes):
                if process.is_alive() or stop.is_set():
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    log.error("Worker process [%s] failed to start; stopping", process.pid)
                    status = STARTUP_FAILURE
                    stop.set()
                    break
                log.warning(
                    "Worker process [%s] died (%s); replacing it", process.pid, process.exitcode
                )
                processes[index] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker shuts down gracefully
        deadline = time.monotonic() + stop_within(config, drain_s)
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("Worker process [%s] did not stop; killing it", process.pid)
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def stop_within(config: uvicorn.Config, drain_s: float) -> float:
    """Seconds a worker is given to end after SIGTERM: its drain (``/readyz`` 503 while it
    still serves), uvicorn's graceful shutdown, and 10 more."""
    return drain_s + (config.timeout_graceful_shutdown or 0) + 10
