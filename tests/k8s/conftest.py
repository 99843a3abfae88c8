"""A real ``wegent serve`` over HTTPS for end-to-end tests (kubectl, client libraries).

``served_tls`` (module scope) is one server per test module: ``WEGENT_TLS=self-signed`` on two
free ports, a fresh database of the session's PostgreSQL, an admin account, and the cheap
password hash. It gives a :class:`TlsServer` (the HTTPS and HTTP URLs, the certificate to trust,
the admin's credentials) and stops the server after the module's last test::

    def test_kubectl_version(served_tls: TlsServer) -> None:
        kubeconfig = ...  # server: served_tls.https_url, certificate-authority: served_tls.ca_path
        token = served_tls.login()  # the admin's access token

A module that needs other settings overrides ``served_tls_env`` (module scope, a dict of
``WEGENT_*`` variables laid over the defaults)::

    @pytest.fixture(scope="module")
    def served_tls_env() -> dict[str, str]:
        return {"WEGENT_WORKERS": "2"}

For a server of a test's own, ``serve_tls(database_url, folder, env=...)`` is the same as a
context manager.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_KEY, TEST_SECRET
from tests.helpers import PASSWORD, SERVICE_PREPARED_STATEMENTS

ADMIN = "tls-admin"
START_WITHIN = 90.0  # seconds for the server to answer /readyz on both ports
STOP_WITHIN = 30.0  # seconds for a graceful stop before SIGKILL


@dataclass(frozen=True)
class TlsServer:
    """A running ``wegent serve`` with HTTPS (see the module docstring)."""

    https_url: str  # https://127.0.0.1:PORT
    http_url: str  # http://127.0.0.1:PORT
    ca_path: Path  # the PEM to trust (kubeconfig: certificate-authority)
    data_dir: Path
    database_url: str
    log_path: Path  # the server's stdout and stderr
    process: subprocess.Popen[bytes] = field(repr=False, compare=False)
    admin_username: str = ADMIN
    admin_password: str = PASSWORD

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only this server's certificate."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    def client(self, **kwargs: object) -> httpx.Client:
        """An HTTPS client of this server, verifying its certificate."""
        return httpx.Client(
            base_url=self.https_url,
            verify=self.ssl_context(),
            timeout=30,
            **kwargs,  # type: ignore[arg-type]
        )

    def login(self, username: str = ADMIN, password: str = PASSWORD) -> str:
        """An access token of ``username`` (the admin by default), over HTTPS."""
        with self.client() as http:
            answer = http.post(
                "/api/v1/auth/login", json={"username": username, "password": password}
            )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a served test server: this process's, without its ``WEGENT_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEGENT_")}
    env.update(
        WEGENT_DATABASE_URL=database_url,
        WEGENT_DATA_DIR=str(data_dir),
        WEGENT_JWT_SECRET=TEST_SECRET,
        WEGENT_SECRET_KEY=TEST_KEY,
        WEGENT_ARGON2_PROFILE="test",
        WEGENT_HOST="127.0.0.1",
        WEGENT_TLS="self-signed",
        WEGENT_POOL_MIN_SIZE="1",
        WEGENT_POOL_MAX_SIZE="5",
        **SERVICE_PREPARED_STATEMENTS,
        WEGENT_ADMIN_USERNAME=ADMIN,
        WEGENT_ADMIN_PASSWORD=PASSWORD,
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def serve_tls(
    database_url: str,
    folder: Path,
    *,
    env: Mapping[str, str] | None = None,
    within: float = START_WITHIN,
) -> Iterator[TlsServer]:
    """Start ``wegent serve`` with HTTPS on free ports, wait until both ports answer
    ``/readyz``, yield it, then stop it (SIGTERM, SIGKILL after :data:`STOP_WITHIN`).

    ``folder`` holds its data dir and log. ``env`` is laid over :func:`server_env` (another
    ``WEGENT_TLS`` mode, workers, ...). A start that fails or times out fails the test with the
    server's output. Ports are taken by binding port 0; if another process takes one before
    the server binds it, the start is tried again on new ports.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        http_port, https_port = free_port(), free_port()
        variables = server_env(
            database_url,
            folder / "data",
            WEGENT_PORT=str(http_port),
            WEGENT_TLS_PORT=str(https_port),
            **dict(env or {}),
        )
        log_path = folder / f"serve-{attempt}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "wegent.cli", "serve"],
                env=variables,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: workers die with it
            )
        given = variables.get("WEGENT_TLS_CERT_FILE")
        server = TlsServer(
            https_url=f"https://127.0.0.1:{https_port}",
            http_url=f"http://127.0.0.1:{http_port}",
            ca_path=Path(given) if given else folder / "data" / "tls" / "server.crt",
            data_dir=folder / "data",
            database_url=database_url,
            log_path=log_path,
            process=proc,
        )
        try:
            if _wait_ready(proc, server, within):
                yield server
                return
        finally:
            _stop(proc)
        # Exited before it was ready: a port taken meanwhile is worth another try.
        if "cannot listen on" not in server.log():
            break
    pytest.fail(
        f"wegent serve exited ({proc.returncode}) before it was ready:\n{server.log()}",
        pytrace=False,
    )


def _wait_ready(proc: subprocess.Popen[bytes], server: TlsServer, within: float) -> bool:
    """True once both ports answer 200 on /readyz; False if the process exits first."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if server.ca_path.exists() and _ready(server):
            return True
        time.sleep(0.2)
    pytest.fail(
        f"wegent serve did not answer /readyz on both ports within {within:.0f} s:\n{server.log()}",
        pytrace=False,
    )


def _ready(server: TlsServer) -> bool:
    try:
        secure = httpx.get(f"{server.https_url}/readyz", verify=server.ssl_context(), timeout=2)
        plain = httpx.get(f"{server.http_url}/readyz", timeout=2)
    except httpx.TransportError:
        return False
    except ssl.SSLError:  # the certificate file was read while being written
        return False
    return secure.status_code == plain.status_code == 200


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_WITHIN)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the server and any workers it started
        proc.wait()


@pytest.fixture(scope="module")
async def served_tls_database(make_database: object) -> str:
    """A fresh database for the module's served server."""
    return await make_database()  # type: ignore[operator, no-any-return]


@pytest.fixture(scope="module")
def served_tls_env() -> dict[str, str]:
    """More settings for ``served_tls``; override in a module to change them."""
    return {}


@pytest.fixture(scope="module")
def served_tls(served_tls_database: str, served_tls_env: dict[str, str]) -> Iterator[TlsServer]:
    """One ``wegent serve`` with ``WEGENT_TLS=self-signed`` for the module (see above)."""
    # Not under pytest's tmp_path, which another pytest session of the same user may prune.
    folder = Path(tempfile.mkdtemp(prefix="wegent-tls-"))
    try:
        with serve_tls(served_tls_database, folder, env=served_tls_env) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)
