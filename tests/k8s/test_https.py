"""``wegent serve`` over HTTPS (API.md §14, Transport): the real process, real sockets, a client
that trusts only the generated certificate; plain HTTP beside it; several workers."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509

from tests.k8s.conftest import TlsServer, serve_tls, server_env
from wegent.tls import certificate_names_of

T = TypeVar("T")


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wegent-tls-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_probes_answer_over_https_and_plain_http(served_tls: TlsServer) -> None:
    with served_tls.client() as https:
        assert https.get("/healthz").json() == {"status": "ok"}
        assert https.get("/readyz").status_code == 200
    assert httpx.get(f"{served_tls.http_url}/healthz").json() == {"status": "ok"}
    # Any local name the certificate covers verifies, not only the address it was reached by.
    port = urlsplit(served_tls.https_url).port
    local = httpx.get(f"https://localhost:{port}/healthz", verify=served_tls.ssl_context())
    assert local.status_code == 200


def test_a_client_that_does_not_trust_the_certificate_is_refused(served_tls: TlsServer) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{served_tls.https_url}/healthz")
    # Plain HTTP to the HTTPS port is not served.
    port = urlsplit(served_tls.https_url).port
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)


def test_the_api_works_over_https_with_a_bearer_token(served_tls: TlsServer) -> None:
    token = served_tls.login()
    with served_tls.client(headers={"Authorization": f"Bearer {token}"}) as https:
        me = https.get("/api/v1/users/me")
    assert me.status_code == 200, me.text
    assert me.json()["username"] == served_tls.admin_username


def test_the_generated_certificate_covers_the_local_names(served_tls: TlsServer) -> None:
    cert = x509.load_pem_x509_certificate(served_tls.ca_path.read_bytes())
    names = certificate_names_of(cert)
    assert {"localhost", "127.0.0.1", "::1"} <= names
    key = served_tls.data_dir / "tls" / "server.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "Serving HTTPS on " + served_tls.https_url in served_tls.log()


def test_given_files_with_two_workers(served_tls: TlsServer, folder: Path) -> None:
    """A given certificate and key, two worker processes: both ports answer from both; a
    worker that dies is replaced; SIGTERM stops every worker cleanly (status 0)."""
    cert, key = folder / "given.crt", folder / "given.key"
    shutil.copy(served_tls.ca_path, cert)
    shutil.copy(served_tls.data_dir / "tls" / "server.key", key)
    env = {
        "WEGENT_TLS": "",
        "WEGENT_TLS_CERT_FILE": str(cert),
        "WEGENT_TLS_KEY_FILE": str(key),
        "WEGENT_WORKERS": "2",
    }
    with serve_tls(served_tls.database_url, folder, env=env) as server:
        assert server.ca_path == cert
        with server.client() as https, httpx.Client(base_url=server.http_url) as http:
            for _ in range(10):
                assert https.get("/healthz").status_code == 200
                assert http.get("/healthz").status_code == 200
        # A shared CI machine under coverage can take long to import and start a worker.
        started = "Application startup complete."
        # Both workers started before one is killed (one killed while starting never says so).
        wait_for(lambda: server.log().count(started) == 2, server.log, within=120)
        workers = worker_pids(server.log(), 2)
        os.kill(workers[0], signal.SIGKILL)
        wait_for(lambda: "died" in server.log(), server.log)
        wait_for(lambda: worker_pids(server.log(), 3), server.log)
        wait_for(lambda: server.log().count(started) == 3, server.log, within=120)
        with server.client() as https:
            assert https.get("/readyz").status_code == 200
    assert server.process.returncode == 0, server.log()
    assert server.log().count("Application shutdown complete.") == 2


def worker_pids(log: str, at_least: int) -> list[int]:
    pids = [int(pid) for pid in re.findall(r"Started worker process \[(\d+)\]", log)]
    return pids if len(pids) >= at_least else []


def wait_for(probe: Callable[[], T], log: Callable[[], str], within: float = 60) -> T:
    """``probe()`` once it is truthy; on time-out, fail with the server's log."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {within}s; server log:\n{log()}")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_failing_start_ends_with_status_3(
    served_tls: TlsServer, folder: Path, workers: str
) -> None:
    """An app that cannot start (here: a reserved admin name) ends ``wegent serve`` with
    uvicorn's start-up failure status, in one process or under the worker supervisor."""
    env = server_env(
        served_tls.database_url,
        folder / "data",
        WEGENT_PORT=str(free_port()),
        WEGENT_TLS_PORT=str(free_port()),
        WEGENT_ADMIN_USERNAME="public",
        WEGENT_WORKERS=workers,
    )
    result = subprocess.run(
        [sys.executable, "-m", "wegent.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    if workers == "2":
        assert "failed to start; stopping" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
