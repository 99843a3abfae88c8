"""API tokens across two processes of one service (API.md §16): the session's in-process app and
a ``wegent serve`` on the same database. A token remembered by one process is refused there
within 5 seconds of its revocation, expiry or its user's disabling through the other; no secret
reaches the served server's log; a watch opened with a token ends when it is revoked; and a
client written as upstream's wegent-cli applies manifests with nothing but a token."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import requests  # upstream wegent-cli's HTTP library (it comes with the kubernetes client)

from tests.auth.test_api_tokens import UNAUTHORIZED, api_key, bearer, make_token
from tests.helpers import Account, register, status_body, unique
from tests.k8s import conftest as k8s
from tests.k8s.conftest import TlsServer

served_tls = k8s.served_tls
GROUP = "/apis/agent.wecode.io/v1"
#: The most a process may go on accepting a refused token (API.md §16), with a second more for
#: a noisy machine.
REFUSED_WITHIN_S = 6.0


@pytest.fixture(scope="module")
async def served_tls_database(client: httpx.AsyncClient, database_url: str) -> str:
    """The session's database, which the in-process app (``client``) has migrated already:
    the served server is a second process of the same service."""
    return database_url


@pytest.fixture(scope="module")
def served_tls_env() -> dict[str, str]:
    """Every request logged, as an operator would turn on to see them."""
    return {"WEGENT_ACCESS_LOG": "true"}


@pytest.fixture(scope="module", autouse=True)
def clean_log(served_tls: TlsServer) -> Iterator[None]:
    """After the module: the served server logged no failure."""
    yield
    log = served_tls.log()
    for sign in ("Traceback", "unhandled error"):
        assert sign not in log, log[-5000:]


@pytest.fixture
async def served(served_tls: TlsServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the served server, over plain HTTP."""
    async with httpx.AsyncClient(base_url=served_tls.http_url, timeout=30) as http:
        yield http


async def refused_within(http: httpx.AsyncClient, headers: dict[str, str], since: float) -> float:
    """Poll ``/api/v1/users/me`` with ``headers`` until it is 401 (the exact body and
    challenge), and answer when, after ``since`` (a ``time.monotonic()``), that request was
    sent. Every answer before it is 200, to a request sent less than
    :data:`REFUSED_WITHIN_S` after ``since``: a busy machine may be slow to answer, but a
    request the server accepted after that time was sent after it."""
    while True:
        sent = time.monotonic() - since
        response = await http.get("/api/v1/users/me", headers=headers)
        if response.status_code == 401:
            assert response.json() == UNAUTHORIZED
            assert response.headers["www-authenticate"] == "Bearer"
            return sent
        assert response.status_code == 200, response.text
        assert sent < REFUSED_WITHIN_S, f"a request sent {sent:.1f} s after was accepted"
        await asyncio.sleep(0.1)


async def me(http: httpx.AsyncClient, headers: dict[str, str], username: str) -> None:
    response = await http.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["username"] == username


async def test_revoked_in_process_is_refused_by_the_served_server(
    client: httpx.AsyncClient, served: httpx.AsyncClient, alice: Account
) -> None:
    created = await make_token(client, alice)
    headers = bearer(str(created["token"]))
    await me(served, headers, alice.username)  # remembered there from now on
    revoked = await client.delete(f"/api/v1/tokens/{created['name']}", headers=alice.headers)
    since = time.monotonic()
    assert (revoked.status_code, revoked.content) == (204, b"")
    here = await client.get("/api/v1/users/me", headers=headers)
    assert (here.status_code, here.json()) == (401, UNAUTHORIZED)  # the revoking process: at once
    await refused_within(served, headers, since)


async def test_revoked_by_the_served_server_is_refused_in_process(
    client: httpx.AsyncClient, served: httpx.AsyncClient, alice: Account
) -> None:
    created = await make_token(client, alice)
    headers = api_key(str(created["token"]))
    await me(client, headers, alice.username)  # remembered in process from now on
    # The login JWT works on both processes: one service, one signing secret.
    revoked = await served.delete(f"/api/v1/tokens/{created['name']}", headers=alice.headers)
    since = time.monotonic()
    assert (revoked.status_code, revoked.content) == (204, b"")
    there = await served.get("/api/v1/users/me", headers=headers)
    assert (there.status_code, there.json()) == (401, UNAUTHORIZED)
    await refused_within(client, headers, since)


async def test_disabling_the_user_refuses_its_token_on_the_served_server(
    client: httpx.AsyncClient, served: httpx.AsyncClient, admin: Account
) -> None:
    user = await register(client)
    secret = str((await make_token(client, user))["token"])
    for headers in (bearer(secret), api_key(secret)):
        await me(served, headers, user.username)
    off = await client.patch(
        f"/api/v1/users/{user.username}", json={"isActive": False}, headers=admin.headers
    )
    since = time.monotonic()
    assert (off.status_code, off.json()["isActive"]) == (200, False)
    await refused_within(served, api_key(secret), since)
    refused = await served.get("/api/v1/users/me", headers=bearer(secret))
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)


async def test_an_expired_token_is_refused_by_the_served_server(
    client: httpx.AsyncClient, served: httpx.AsyncClient, alice: Account, conn: asyncpg.Connection
) -> None:
    created = await make_token(client, alice, expiresInDays=1)
    headers = bearer(str(created["token"]))
    await me(served, headers, alice.username)
    expired = await conn.execute(
        "UPDATE api_tokens SET expires_at = now() - interval '1 second' "
        "WHERE name = $1 AND owner = (SELECT id FROM users WHERE username = $2)",
        created["name"],
        alice.username,
    )
    since = time.monotonic()
    assert expired == "UPDATE 1"
    await refused_within(served, headers, since)


async def test_the_served_servers_log_never_holds_a_secret(
    client: httpx.AsyncClient, served: httpx.AsyncClient, served_tls: TlsServer, alice: Account
) -> None:
    secret = str((await make_token(client, alice))["token"])
    unknown = "wg-" + secrets.token_urlsafe(32)  # well formed, never made
    malformed = "wg-" + secrets.token_urlsafe(12)
    ns = alice.username
    sent = [
        (bearer(secret), 404),
        (api_key(secret), 404),
        ({**bearer(secret), **api_key(secret)}, 404),
        (bearer(unknown), 401),
        (api_key(unknown), 401),
        ({**bearer(unknown), **api_key(secret)}, 401),  # Bearer wins: the wrong one
        (bearer(malformed), 401),
        (api_key(malformed), 401),
    ]
    marks = []
    for headers, status in sent:
        mark = unique("probe")  # a ghost that is not there: the request line names it
        response = await served.get(f"/api/v1/namespaces/{ns}/ghosts/{mark}", headers=headers)
        assert response.status_code == status, response.text
        marks.append(mark)
    # The access log is written as requests end: wait until it shows every one of them.
    deadline = time.monotonic() + 30
    while not all(mark in served_tls.log() for mark in marks):
        assert time.monotonic() < deadline, served_tls.log()[-3000:]
        await asyncio.sleep(0.1)
    log = served_tls.log()
    assert f'"/api/v1/namespaces/{ns}/ghosts/{marks[0]}" 404' in log  # the access lines
    assert f'"/api/v1/namespaces/{ns}/ghosts/{marks[3]}" 401' in log
    for given in (secret, unknown, malformed):
        assert given[len("wg-") :] not in log
    assert secret[8:] not in log  # not even the part after the shown prefix


async def events_of(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """A watch stream's events (API.md §15: one JSON object a line)."""
    async for line in response.aiter_lines():
        if line:
            yield json.loads(line)


async def test_a_watch_with_a_token_ends_when_it_is_revoked(
    client: httpx.AsyncClient, served: httpx.AsyncClient, alice: Account
) -> None:
    created = await make_token(client, alice)
    ns = alice.username
    async with served.stream(
        "GET",
        f"{GROUP}/namespaces/{ns}/ghosts",
        params={"watch": "true"},
        headers=api_key(str(created["token"])),
    ) as response:
        assert response.status_code == 200, await response.aread()
        events = events_of(response)
        made = await client.post(
            f"/api/v1/namespaces/{ns}/ghosts",
            json={"kind": "Ghost", "metadata": {"name": "seen"}, "spec": {"systemPrompt": "p"}},
            headers=alice.headers,
        )
        assert made.status_code == 201, made.text
        added = await asyncio.wait_for(anext(events), 30)
        assert added == {"type": "ADDED", "object": made.json()}
        revoked = await client.delete(f"/api/v1/tokens/{created['name']}", headers=alice.headers)
        assert revoked.status_code == 204
        # The served server's hub sees the revocation and ends the stream, within seconds.
        ended = await asyncio.wait_for(alist(events), 30)
    assert ended == [
        {
            "type": "ERROR",
            "object": status_body(
                403,
                "Forbidden",
                f'token "{created["name"]}" of user "{ns}" can no longer watch ghosts in '
                f'namespace "{ns}"',
            ),
        }
    ]


async def alist(events: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event async for event in events]


# -- a client as upstream's wegent-cli writes it ------------------------------------------------

CLI_MANIFESTS: list[dict[str, Any]] = [  # as a YAML file would hold them: the Bot first
    {
        "apiVersion": "agent.wecode.io/v1",
        "kind": "Bot",
        "metadata": {"name": "cli-bot"},
        "spec": {
            "ghostRef": {"name": "cli-ghost"},
            "shellRef": {"name": "cli-shell"},
            "modelRef": {"name": "cli-model"},
        },
    },
    {
        "apiVersion": "agent.wecode.io/v1",
        "kind": "Ghost",
        "metadata": {"name": "cli-ghost"},
        "spec": {"systemPrompt": "You review pull requests."},
    },
    {
        "apiVersion": "agent.wecode.io/v1",
        "kind": "Model",
        "metadata": {"name": "cli-model"},
        "spec": {
            "modelConfig": {
                "env": {
                    "ANTHROPIC_MODEL": "claude-sonnet-4",
                    "ANTHROPIC_AUTH_TOKEN": "sk-example-not-a-real-token",
                }
            }
        },
    },
    {
        "apiVersion": "agent.wecode.io/v1",
        "kind": "Shell",
        "metadata": {"name": "cli-shell"},
        "spec": {"shellType": "ClaudeCode", "baseImage": "ghcr.io/wecode-ai/wegent-base:1.0"},
    },
]


class CliClient:
    """What upstream's ``WegentClient`` sends: a ``requests`` session, ``Content-Type:
    application/json`` and ``Authorization: Bearer <token>`` on every request, paths under
    ``{server}/api``, the namespace ``default`` unless told."""

    def __init__(self, server: str, token: str) -> None:
        self.server = server
        self.token = token
        self.session = requests.Session()

    def request(self, method: str, path: str, data: Any = None) -> requests.Response:
        return self.session.request(
            method,
            f"{self.server}/api{path}",
            json=data,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
            timeout=30,
        )

    def apply_kinds(self, namespace: str, resources: list[dict[str, Any]]) -> requests.Response:
        return self.request("POST", f"/v1/namespaces/{namespace}/apply", resources)

    def get_kind(self, plural: str, namespace: str, name: str) -> requests.Response:
        return self.request("GET", f"/v1/namespaces/{namespace}/{plural}/{name}")


def cli_result(kind: str, name: str, namespace: str, operation: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "namespace": namespace,
        "operation": operation,
        "success": True,
        "error": None,
    }


async def test_a_wegent_cli_client_applies_with_only_a_token(
    client: httpx.AsyncClient, served_tls: TlsServer, alice: Account
) -> None:
    secret = str((await make_token(client, alice, name="wegent-cli"))["token"])
    cli = CliClient(served_tls.http_url, secret)
    ns = alice.username
    applied = await asyncio.to_thread(cli.apply_kinds, "default", CLI_MANIFESTS)
    assert applied.status_code == 200, applied.text
    assert applied.json() == {
        "success": True,
        "message": "Applied 4/4 resources",
        "results": [
            cli_result("Bot", "cli-bot", ns, "created"),
            cli_result("Ghost", "cli-ghost", ns, "created"),
            cli_result("Model", "cli-model", ns, "created"),
            cli_result("Shell", "cli-shell", ns, "created"),
        ],
    }
    again = await asyncio.to_thread(cli.apply_kinds, "default", CLI_MANIFESTS)
    assert again.status_code == 200, again.text
    assert again.json() == {
        "success": True,
        "message": "Applied 4/4 resources",
        "results": [
            cli_result(m["kind"], m["metadata"]["name"], ns, "unchanged") for m in CLI_MANIFESTS
        ],
    }
    got = await asyncio.to_thread(cli.get_kind, "bots", "default", "cli-bot")
    assert got.status_code == 200, got.text
    bot = got.json()
    assert (bot["kind"], bot["metadata"]["name"], bot["metadata"]["namespace"]) == (
        "Bot",
        "cli-bot",
        ns,
    )
    assert bot["spec"] == {
        "ghostRef": {"name": "cli-ghost", "namespace": ns},
        "shellRef": {"name": "cli-shell", "namespace": ns},
        "modelRef": {"name": "cli-model", "namespace": ns},
    }
    assert bot["metadata"]["createdBy"] == ns
    # What the token may not do, it is told as the CLI reports it (``detail``).
    elsewhere = await asyncio.to_thread(cli.apply_kinds, "public", CLI_MANIFESTS[1:2])
    assert elsewhere.status_code == 403
    assert elsewhere.json() == status_body(
        403,
        "Forbidden",
        f'token "wegent-cli" of user "{ns}" cannot write in namespace "public"',
        details={"name": "public", "kind": "Namespace"},
    )
