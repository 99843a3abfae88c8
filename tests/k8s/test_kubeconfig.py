"""``wegent kubeconfig`` (API.md §16) against a real server over HTTPS and HTTP, and the kubeconfig
it prints used as printed by the real ``kubectl``: one server for the module, one user.

The command runs as a subprocess, as a user runs it: the password in ``WEGENT_PASSWORD``, no
terminal, ``WEGENT_DATA_DIR`` pointing at the server's data dir (where it finds the server's
self-signed certificate) or at an empty folder (where it finds nothing, and must leave nothing).
"""

from __future__ import annotations

import base64
import datetime
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import PASSWORD
from tests.k8s.conftest import TlsServer, free_port
from wegent import tls
from wegent.kubeconfig import PLAIN_HTTP, default_token_name

KUBECTL = shutil.which("kubectl")
USER = "kc-user"
TOKEN = re.compile(r"wg-[A-Za-z0-9_-]{32,}")
GHOST = """\
apiVersion: agent.wecode.io/v1
kind: Ghost
metadata:
  name: from-kubeconfig
spec:
  systemPrompt: Printed by wegent kubeconfig.
"""


def expected_kubeconfig(server: str, token: str, authority: bytes | None = None) -> str:
    """The exact text the command prints for :data:`USER` on ``server``."""
    host = server.split("://", 1)[1]
    data = ""
    if authority is not None:
        data = f"    certificate-authority-data: {base64.b64encode(authority).decode()}\n"
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        f"- name: {host}\n"
        "  cluster:\n"
        f"    server: {server}\n"
        f"{data}"
        "users:\n"
        f"- name: {USER}@{host}\n"
        "  user:\n"
        f"    token: {token}\n"
        "contexts:\n"
        f"- name: {USER}@{host}\n"
        "  context:\n"
        f"    cluster: {host}\n"
        f"    user: {USER}@{host}\n"
        f"    namespace: {USER}\n"
        f"current-context: {USER}@{host}\n"
    )


def token_of(printed: str) -> str:
    token = yaml.safe_load(printed)["users"][0]["user"]["token"]
    assert TOKEN.fullmatch(token), token
    return str(token)


@pytest.fixture(scope="module")
def user(served_tls: TlsServer) -> str:
    with httpx.Client(base_url=served_tls.http_url, timeout=30) as http:
        registered = http.post(
            "/api/v1/auth/register", json={"username": USER, "password": PASSWORD}
        )
    assert registered.status_code == 201, registered.text
    return USER


@pytest.fixture
def empty_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir with nothing in it: it must stay empty (the command reads no settings)."""
    folder = tmp_path / "empty-data"
    folder.mkdir()
    yield folder
    assert list(folder.iterdir()) == []


def wegent_kubeconfig(
    *args: str, data_dir: Path, password: str | None = PASSWORD, **env: str
) -> subprocess.CompletedProcess[str]:
    """``wegent kubeconfig ARGS`` with no terminal and none of this process's WEGENT_*."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith("WEGENT_")}
    variables["WEGENT_DATA_DIR"] = str(data_dir)
    if password is not None:
        variables["WEGENT_PASSWORD"] = password
    variables.update(env)
    return subprocess.run(
        [sys.executable, "-m", "wegent.cli", "kubeconfig", *args],
        env=variables,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None, "kubectl is not on the PATH: install kubectl 1.32 to run the suite"
    done = subprocess.run(
        [
            KUBECTL,
            f"--kubeconfig={kubeconfig}",
            f"--cache-dir={kubeconfig.parent / 'cache'}",
            *args,
        ],
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done


def listed_tokens(served_tls: TlsServer) -> dict[str, dict[str, object]]:
    with served_tls.client() as http:
        jwt = http.post("/api/v1/auth/login", json={"username": USER, "password": PASSWORD}).json()[
            "access_token"
        ]
        answer = http.get("/api/v1/tokens", headers={"Authorization": f"Bearer {jwt}"})
    assert answer.status_code == 200, answer.text
    return {item["name"]: item for item in answer.json()["items"]}


def test_kubectl_works_with_the_printed_kubeconfig(
    served_tls: TlsServer, user: str, tmp_path: Path
) -> None:
    data_before = sorted(p.relative_to(served_tls.data_dir) for p in served_tls.data_dir.rglob("*"))
    done = wegent_kubeconfig(
        "--server",
        served_tls.https_url,
        "--username",
        user,
        "--token-name",
        "laptop",
        data_dir=served_tls.data_dir,
    )
    assert (done.returncode, done.stderr) == (0, "")
    token = token_of(done.stdout)
    # The server's self-signed certificate, found in its data dir and verified, is embedded.
    authority = served_tls.ca_path.read_bytes()
    assert done.stdout == expected_kubeconfig(served_tls.https_url, token, authority)
    assert sorted(p.relative_to(served_tls.data_dir) for p in served_tls.data_dir.rglob("*")) == (
        data_before
    )

    config = tmp_path / "kubeconfig"
    config.write_text(done.stdout)
    empty = kubectl(config, "get", "ghosts")
    assert (empty.stdout, empty.stderr) == ("", f"No resources found in {user} namespace.\n")
    applied = kubectl(config, "apply", "-f", "-", stdin=GHOST)
    assert applied.stdout == "ghost.agent.wecode.io/from-kubeconfig created\n"
    shown = kubectl(
        config,
        "get",
        "ghost",
        "from-kubeconfig",
        "-o",
        "jsonpath={.metadata.namespace}/{.spec.systemPrompt}",
    )
    assert shown.stdout == f"{user}/Printed by wegent kubeconfig."
    whoami = kubectl(config, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == user

    laptop = listed_tokens(served_tls)["laptop"]
    assert laptop["prefix"] == token[:8]
    assert laptop["lastUsedAt"] is not None  # kubectl used it
    assert laptop["namespaces"] is None and laptop["role"] is None


def test_plain_http_embeds_no_authority(served_tls: TlsServer, user: str, empty_dir: Path) -> None:
    """No --username: WEGENT_USERNAME. No --token-name: kubeconfig-<host>-<UTC time>."""
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    done = wegent_kubeconfig(
        "--server",
        served_tls.http_url + "/",
        "--expires-in-days",
        "7",
        data_dir=empty_dir,
        WEGENT_USERNAME=user,
    )
    after = datetime.datetime.now(datetime.UTC)
    assert (done.returncode, done.stderr) == (0, f"wegent: warning: {PLAIN_HTTP}\n")
    token = token_of(done.stdout)
    assert done.stdout == expected_kubeconfig(served_tls.http_url, token)
    me = httpx.get(
        f"{served_tls.http_url}/api/v1/users/me",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert (me.status_code, me.json()["username"]) == (200, user)

    defaults = [
        default_token_name(socket.gethostname(), before + datetime.timedelta(seconds=s))
        for s in range(int((after - before).total_seconds()) + 1)
    ]
    names = {*defaults, *(f"{name}-{n}" for name in defaults for n in range(2, 10))}
    (made,) = [item for name, item in listed_tokens(served_tls).items() if name in names]
    created = datetime.datetime.fromisoformat(str(made["createdAt"]))
    expires = datetime.datetime.fromisoformat(str(made["expiresAt"]))
    assert expires - created == datetime.timedelta(days=7)


def test_the_given_certificate_authority_is_embedded(
    served_tls: TlsServer, user: str, empty_dir: Path
) -> None:
    done = wegent_kubeconfig(
        "--server",
        served_tls.https_url,
        "--username",
        user,
        "--certificate-authority",
        str(served_tls.ca_path),
        data_dir=empty_dir,
    )
    assert (done.returncode, done.stderr) == (0, "")
    authority = served_tls.ca_path.read_bytes()
    assert done.stdout == expected_kubeconfig(
        served_tls.https_url, token_of(done.stdout), authority
    )


def test_wrong_password(served_tls: TlsServer, user: str) -> None:
    done = wegent_kubeconfig(
        "--server",
        served_tls.https_url,
        "--username",
        user,
        data_dir=served_tls.data_dir,
        password="not the password",
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f'wegent: login as "{user}" failed: invalid username or password\n'


def test_token_name_taken(served_tls: TlsServer, user: str) -> None:
    args = ("--server", served_tls.https_url, "--username", user, "--token-name", "taken")
    assert wegent_kubeconfig(*args, data_dir=served_tls.data_dir).returncode == 0
    again = wegent_kubeconfig(*args, data_dir=served_tls.data_dir)
    assert (again.returncode, again.stdout) == (2, "")
    assert again.stderr == (
        f'wegent: cannot create the API token: user "{user}" already has a token named "taken" '
        "(choose another with --token-name)\n"
    )


def test_a_wrong_certificate_authority_is_refused(
    served_tls: TlsServer, user: str, tmp_path: Path
) -> None:
    other = tmp_path / "other.crt"
    other.write_bytes(tls.self_signed_pair(["127.0.0.1"])[0])
    done = wegent_kubeconfig(
        "--server",
        served_tls.https_url,
        "--username",
        user,
        "--certificate-authority",
        str(other),
        data_dir=served_tls.data_dir,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"wegent: cannot verify the TLS certificate of {served_tls.https_url} with the CA in "
        f"{other}: self-signed certificate\n"
    )


def test_no_certificate_that_verifies(served_tls: TlsServer, user: str, tmp_path: Path) -> None:
    """Nothing on this machine (an empty data dir), or WEGENT_TLS_CERT_FILE, looked at before
    the data dir, naming another certificate: the system's trust store does not know the
    server's, and nothing unverified is used."""
    other = tmp_path / "other.crt"
    other.write_bytes(tls.self_signed_pair(["127.0.0.1"])[0])
    empty = tmp_path / "nothing"
    empty.mkdir()
    refused = (
        f"wegent: cannot verify the TLS certificate of {served_tls.https_url}: self-signed "
        "certificate (give the CA that signed it, or a self-signed certificate itself, with "
        "--certificate-authority)\n"
    )
    args = ("--server", served_tls.https_url, "--username", user)
    for done in (
        wegent_kubeconfig(*args, data_dir=empty),
        wegent_kubeconfig(*args, data_dir=served_tls.data_dir, WEGENT_TLS_CERT_FILE=str(other)),
    ):
        assert (done.returncode, done.stdout, done.stderr) == (2, "", refused)
    assert list(empty.iterdir()) == []


def test_unreachable_server(empty_dir: Path) -> None:
    url = f"https://127.0.0.1:{free_port()}"
    done = wegent_kubeconfig("--server", url, "--username", USER, data_dir=empty_dir)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"wegent: cannot reach {url}: Connection refused\n"


def test_no_terminal_and_no_password_or_username(
    served_tls: TlsServer, user: str, empty_dir: Path
) -> None:
    no_password = wegent_kubeconfig(
        "--server", served_tls.http_url, "--username", user, data_dir=empty_dir, password=None
    )
    assert (no_password.returncode, no_password.stdout) == (2, "")
    assert no_password.stderr == "wegent: no password: set WEGENT_PASSWORD or run on a terminal\n"
    no_username = wegent_kubeconfig("--server", served_tls.http_url, data_dir=empty_dir)
    assert (no_username.returncode, no_username.stdout) == (2, "")
    assert no_username.stderr == "wegent: no user name: give --username or set WEGENT_USERNAME\n"


def test_a_server_the_system_trusts_embeds_nothing(
    served_tls: TlsServer, user: str, empty_dir: Path, tmp_path: Path
) -> None:
    """Verified through the system's trust store (here OpenSSL's, moved by SSL_CERT_FILE; Go's
    kubectl reads the same variable): kubectl trusts it the same way, nothing is embedded."""
    trusted = {"SSL_CERT_FILE": str(served_tls.ca_path)}
    done = wegent_kubeconfig(
        "--server", served_tls.https_url, "--username", user, data_dir=empty_dir, **trusted
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == expected_kubeconfig(served_tls.https_url, token_of(done.stdout))
    config = tmp_path / "kubeconfig"
    config.write_text(done.stdout)
    whoami = kubectl(
        config, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", env=trusted
    )
    assert whoami.stdout == user


def test_https_on_a_port_that_serves_http(served_tls: TlsServer, empty_dir: Path) -> None:
    url = served_tls.http_url.replace("http://", "https://")
    done = wegent_kubeconfig("--server", url, "--username", USER, data_dir=empty_dir)
    assert (done.returncode, done.stdout) == (2, "")
    assert (
        done.stderr == f"wegent: cannot reach {url}: TLS handshake failed: wrong version number\n"
    )
