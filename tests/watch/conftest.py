"""Watch tests run against a real ``wegent serve`` (streams need real sockets): one server per
module (``served_tls`` of tests/k8s), reached over plain HTTP, and :class:`Events` to read a
stream from a thread, so that a test can write while it waits and can tell "nothing came"."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import PASSWORD, unique
from tests.k8s import conftest as k8s
from tests.k8s.conftest import TlsServer

# The served server of tests/k8s, one per module.
served_tls = k8s.served_tls
served_tls_database = k8s.served_tls_database


@pytest.fixture(scope="module")
def served_tls_env() -> dict[str, str]:
    """Bookmarks every second, so that tests see them soon."""
    return {"WEGENT_WATCH_BOOKMARK_S": "1"}


GROUP = "/apis/agent.wecode.io/v1"
_END = object()


class Events:
    """The events of one stream, read by a thread into a queue."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines():
                if line:
                    self._queue.put(json.loads(line))
        except httpx.HTTPError:
            pass
        self._queue.put(_END)

    def next(self, within: float = 30) -> dict[str, Any]:
        """The next event; fails when the stream ends or nothing comes within ``within`` s."""
        try:
            event = self._queue.get(timeout=within)
        except queue.Empty:
            raise AssertionError(f"no event within {within} s") from None
        if event is _END:
            self._queue.put(_END)
            raise AssertionError("the stream ended")
        return dict(event)

    def take(self, count: int, within: float = 10) -> list[dict[str, Any]]:
        return [self.next(within) for _ in range(count)]

    def quiet(self, seconds: float) -> None:
        """Nothing comes (and the stream stays open) for ``seconds``."""
        try:
            event = self._queue.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected: {'the end' if event is _END else event}")

    def ended(self, within: float = 10) -> list[dict[str, Any]]:
        """Wait for the end of the stream; answers the events that came before it."""
        got = []
        while True:
            try:
                event = self._queue.get(timeout=within)
            except queue.Empty:
                raise AssertionError(f"the stream did not end within {within} s") from None
            if event is _END:
                self._queue.put(_END)
                return got
            got.append(event)


class Client:
    """An account's HTTP client of the served server."""

    def __init__(self, server: TlsServer, token: str, username: str) -> None:
        self.username = username
        self.http = httpx.Client(
            base_url=server.http_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30),
        )

    @contextlib.contextmanager
    def watch(
        self, path: str, headers: dict[str, str] | None = None, **params: str
    ) -> Iterator[Events]:
        with self.http.stream(
            "GET", path, params={"watch": "true", **params}, headers=headers
        ) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"] == "application/json"
            yield Events(response)

    def must(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code < 300, response.text
        return dict(response.json()) if response.content else {}

    def namespace(self) -> str:
        name = unique("w")
        self.must("POST", "/api/v1/namespaces", json={"name": name})
        return name

    def ghost(
        self, namespace: str, name: str, prompt: str = "p", labels: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return self.must(
            "POST", f"/api/v1/namespaces/{namespace}/ghosts", json=ghost(name, prompt, labels)
        )


def ghost(name: str, prompt: str = "p", labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels is not None:
        metadata["labels"] = labels
    return {"kind": "Ghost", "metadata": metadata, "spec": {"systemPrompt": prompt}}


def version(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


@pytest.fixture(scope="module", autouse=True)
def clean_log(served_tls: TlsServer) -> Iterator[None]:
    """After the module: the server logged no failure, and held no change back for long (the
    hub warns after 5 s; no test holds a transaction open that long)."""
    yield
    log = served_tls.log()
    for sign in ("Traceback", "unhandled error", "changes held back"):
        assert sign not in log, log[-5000:]


@pytest.fixture(scope="module")
def admin(served_tls: TlsServer) -> Iterator[Client]:
    client = Client(served_tls, served_tls.login(), served_tls.admin_username)
    yield client
    client.http.close()


@pytest.fixture
def user(served_tls: TlsServer) -> Iterator[Client]:
    """A new ordinary user."""
    name = unique("u")
    with httpx.Client(base_url=served_tls.http_url) as http:
        made = http.post("/api/v1/auth/register", json={"username": name, "password": PASSWORD})
        assert made.status_code == 201, made.text
    client = Client(served_tls, served_tls.login(name, PASSWORD), name)
    yield client
    client.http.close()
