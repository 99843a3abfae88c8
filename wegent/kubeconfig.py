"""``wegent kubeconfig``: log in, create an API token and print a kubeconfig that uses it.

API.md §16. The client side of the service, through its public API only (login, ``GET
/api/v1/users/me``, ``POST /api/v1/tokens``) with the standard library's HTTP client: it reads
no server settings and writes nothing (``load_settings`` would make secrets and a certificate
in the data dir).

An ``https://`` server is always verified, and what verified it is what the kubeconfig trusts:

1. ``--certificate-authority FILE``: its certificates, embedded as
   ``certificate-authority-data``;
2. else the service's own self-signed certificate when this machine has it, found as the
   service finds it (``WEGENT_TLS_CERT_FILE``, else ``<data dir>/tls/server.crt``; only a
   self-issued certificate, as :func:`wegent.tls.certificate_authority_file` decides), and
   only when the server's handshake verifies with it: embedded;
3. else the system's trust store: nothing embedded (kubectl uses its own).

Nothing unverified is embedded and verification is never turned off. Every failure is a
:class:`KubeconfigError` whose message is one line.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import getpass
import http.client
import json
import re
import socket
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import msgspec
import yaml

from wegent import tls
from wegent.names import MAX_NAME, is_name

DEFAULT_DAYS = 90  # the server's default lifetime of an API token (API.md §16)
MAX_DAYS = 365
TIMEOUT_S = 30.0
PLAIN_HTTP = "kubectl sends no token over plain HTTP: give it the service's https:// URL"
_TOKEN_PREFIX = "kubeconfig-"  # noqa: S105 - a name, not a secret
_STAMP = "%Y%m%dT%H%M%SZ"
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_T = TypeVar("_T")
_PEM_CERTIFICATE = re.compile(
    rb"^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\s]*?-----END CERTIFICATE-----$", re.MULTILINE
)
_SSL_NOISE = re.compile(r"^\[SSL: [A-Z0-9_]+\] |\s*\(_ssl\.c:\d+\)$")


class KubeconfigError(Exception):
    """The kubeconfig cannot be made; the message is one line for the user."""


class _Unverified(KubeconfigError):
    """The server's TLS certificate did not verify with the trust tried."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot verify the TLS certificate of {url}: {reason}")
        self.url = url
        self.reason = reason


class _Taken(KubeconfigError):
    """The user has a token of that name already."""


@dataclass(frozen=True)
class Options:
    """The command line of ``wegent kubeconfig``."""

    server: str
    username: str | None = None
    token_name: str | None = None
    expires_in_days: int | None = None
    certificate_authority: Path | None = None


def make(options: Options, env: Mapping[str, str]) -> str:
    """The kubeconfig YAML for ``options``: checks the options, verifies the server, asks for
    the password (``WEGENT_PASSWORD`` or the terminal), logs in, creates the token."""
    server = server_url(options.server)
    token_name = options.token_name
    if token_name is None:
        # Two kubeconfigs made in the same second take the next free name (-2 to -9).
        base = default_token_name(socket.gethostname(), datetime.datetime.now(datetime.UTC))
        names = [base, *(f"{base}-{n}" for n in range(2, 10))]
    elif is_name(token_name):
        names = [token_name]
    else:
        raise KubeconfigError(
            f"--token-name must be 1 to {MAX_NAME} letters, digits, '.', '_' or '-', starting "
            f"and ending with a letter or digit, got {token_name!r}"
        )
    days = options.expires_in_days
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise KubeconfigError(f"--expires-in-days must be between 1 and {MAX_DAYS}, got {days}")
    if options.certificate_authority is not None and not server.startswith("https://"):
        raise KubeconfigError("--certificate-authority needs an https:// --server")
    username = options.username or env.get("WEGENT_USERNAME") or _ask_username()

    client, authority = connect(server, options.certificate_authority, env)
    password = env.get("WEGENT_PASSWORD") or _ask_password(f"password of {username} at {server}: ")
    jwt = client.login(username, password)
    me = client.me(jwt)
    for name in names:
        try:
            token = client.create_token(jwt, name, days)
            break
        except _Taken:
            if name == names[-1]:
                raise
    if authority is None and not server.startswith("https://"):
        print(f"wegent: warning: {PLAIN_HTTP}", file=sys.stderr)
    return render(server, me, token, authority)


def server_url(raw: str) -> str:
    """``raw`` as the kubeconfig's server: an http(s) URL with a host, no trailing ``/``."""
    try:
        parts = urlsplit(raw.strip())
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
    ):
        raise KubeconfigError(f"--server must be an http:// or https:// URL, got {raw!r}")
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path.rstrip("/"), "", ""))


def default_token_name(host: str, now: datetime.datetime) -> str:
    """``kubeconfig-<host>-<UTC time>``: a valid token name (61 characters at most, so that
    ``-2`` to ``-9`` can follow) whatever the host name holds; the host is shortened, or left
    out when nothing of it is usable."""
    stamp = now.astimezone(datetime.UTC).strftime(_STAMP)
    room = MAX_NAME - len(_TOKEN_PREFIX) - len(stamp) - 1 - len("-9")
    label = _NOT_IN_NAME.sub("-", host)[:room].strip("._-")
    return f"{_TOKEN_PREFIX}{label}-{stamp}" if label else f"{_TOKEN_PREFIX}{stamp}"


def local_authority(env: Mapping[str, str]) -> bytes | None:
    """The service's own certificate on this machine, where the service finds it
    (``WEGENT_TLS_CERT_FILE``, else ``<WEGENT_DATA_DIR>/tls/server.crt``), as PEM; None when
    there is none or it is not self-issued (a CA-issued one is trusted through a CA)."""
    from wegent.settings import default_data_dir

    given = env.get("WEGENT_TLS_CERT_FILE")
    if given:
        path = Path(given).expanduser()
    else:
        data_dir = Path(env.get("WEGENT_DATA_DIR") or default_data_dir()).expanduser()
        path = tls.tls_dir(data_dir) / tls.CERT_NAME
    try:
        return tls.trust_anchor(path.read_bytes())
    except OSError:
        return None


def read_authority(path: Path) -> bytes:
    """The certificates of ``--certificate-authority`` as PEM, nothing else of the file (a
    key, comments); whether they load is for the TLS library to say (:func:`_context`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KubeconfigError(
            f"--certificate-authority: cannot read {path}: {exc.strerror or exc}"
        ) from None
    blocks = _PEM_CERTIFICATE.findall(data.replace(b"\r\n", b"\n"))
    if not blocks:
        raise KubeconfigError(f"--certificate-authority: {path} holds no PEM certificate")
    return b"".join(block + b"\n" for block in blocks)


def connect(server: str, given: Path | None, env: Mapping[str, str]) -> tuple[Client, bytes | None]:
    """A client of ``server`` whose TLS trust verified it, and the PEM to embed (None: plain
    HTTP, or the system's trust store)."""
    if not server.startswith("https://"):
        client = Client(server, None)
        client.probe()
        return client, None
    if given is not None:
        pem = read_authority(given)
        client = Client(server, _context(pem, f"--certificate-authority: {given}"))
        try:
            client.probe()
        except _Unverified as exc:
            raise KubeconfigError(
                f"cannot verify the TLS certificate of {server} with the CA in {given}: "
                f"{exc.reason}"
            ) from None
        return client, pem
    local = local_authority(env)
    if local is not None:
        client = Client(server, _context(local, "the service's certificate on this machine"))
        try:
            client.probe()
            return client, local
        except _Unverified:
            pass  # not this server's certificate: the system's trust store may know it
    client = Client(server, ssl.create_default_context())
    try:
        client.probe()
    except _Unverified as exc:
        raise KubeconfigError(
            f"{exc} (give the CA that signed it, or a self-signed certificate itself, "
            "with --certificate-authority)"
        ) from None
    return client, None


def render(server: str, username: str, token: str, authority: bytes | None) -> str:
    """The kubeconfig: one cluster (named by the server's host and port), one user and one
    context (``<username>@<host:port>``) whose namespace is the user's personal one."""
    host = urlsplit(server).netloc
    name = f"{username}@{host}"
    cluster: dict[str, str] = {"server": server}
    if authority is not None:
        cluster["certificate-authority-data"] = base64.b64encode(authority).decode("ascii")
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": host, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": host, "user": name, "namespace": username}}
        ],
        "current-context": name,
    }
    return yaml.safe_dump(config, sort_keys=False)


class _Status(msgspec.Struct):
    """What a failure answer may say (a Kubernetes ``Status``, API.md §12)."""

    message: str = ""
    reason: str = ""


class _Login(msgspec.Struct):
    access_token: str


class _Me(msgspec.Struct):
    username: str


class _Token(msgspec.Struct):
    token: str


class _Refused(Exception):
    """The server answered with a failure status."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: the kubeconfig must name the URL that answers."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Client:
    """The few calls the command makes, over one TLS trust (``context``) or plain HTTP."""

    def __init__(self, server: str, context: ssl.SSLContext | None) -> None:
        self.server = server
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def probe(self) -> None:
        """Reach the server (and verify its certificate): any HTTP answer will do."""
        with contextlib.suppress(_Refused):
            self._call("GET", "/version")

    def login(self, username: str, password: str) -> str:
        try:
            body = self._call(
                "POST", "/api/v1/auth/login", {"username": username, "password": password}
            )
        except _Refused as exc:
            raise KubeconfigError(f'login as "{username}" failed: {exc.message}') from None
        return self._decode(body, _Login, "/api/v1/auth/login").access_token

    def me(self, jwt: str) -> str:
        """The caller's name: its personal namespace (API.md §3)."""
        try:
            body = self._call("GET", "/api/v1/users/me", token=jwt)
        except _Refused as exc:
            raise KubeconfigError(f"cannot read the user: {exc.message}") from None
        return self._decode(body, _Me, "/api/v1/users/me").username

    def create_token(self, jwt: str, name: str, days: int | None) -> str:
        request: dict[str, Any] = {"name": name}
        if days is not None:
            request["expiresInDays"] = days
        try:
            body = self._call("POST", "/api/v1/tokens", request, token=jwt)
        except _Refused as exc:
            message = f"cannot create the API token: {exc.message}"
            if exc.reason == "AlreadyExists":
                raise _Taken(f"{message} (choose another with --token-name)") from None
            raise KubeconfigError(message) from None
        return self._decode(body, _Token, "/api/v1/tokens").token

    def _decode(self, body: bytes, kind: type[_T], path: str) -> _T:
        try:
            return msgspec.json.decode(body, type=kind)
        except msgspec.DecodeError:
            raise KubeconfigError(
                f"{self.server}{path} answered something other than the Wegent API"
            ) from None

    def _call(
        self, method: str, path: str, body: object = None, *, token: str | None = None
    ) -> bytes:
        """The answer's body; :class:`_Refused` for a failure status, :class:`_Unverified` or
        :class:`KubeconfigError` when the server is not reached."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(  # noqa: S310 - the scheme is http(s), server_url
            self.server + path, data=data, headers=headers, method=method
        )
        try:
            with self._opener.open(request, timeout=TIMEOUT_S) as answer:
                return bytes(answer.read())
        except urllib.error.HTTPError as exc:
            with exc:
                raise _refused(exc) from None
        except urllib.error.URLError as exc:
            raise self._unreachable(exc.reason) from None
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, reason: object) -> KubeconfigError:
        if isinstance(reason, ssl.SSLCertVerificationError):
            why = str(reason.verify_message or reason.reason or "certificate verify failed")
            return _Unverified(self.server, why.rstrip("."))
        if isinstance(reason, ssl.SSLError):
            why = _SSL_NOISE.sub("", str(reason))
            return KubeconfigError(f"cannot reach {self.server}: TLS handshake failed: {why}")
        if isinstance(reason, OSError) and reason.strerror:
            why = reason.strerror
        elif isinstance(reason, TimeoutError):
            why = f"no answer within {TIMEOUT_S:g} s"
        else:
            why = str(reason) or type(reason).__name__
        return KubeconfigError(f"cannot reach {self.server}: {why}")


def _refused(exc: urllib.error.HTTPError) -> _Refused:
    """A failure answer as one line: the Status message, or the HTTP status line."""
    location = exc.headers.get("Location") if exc.headers else None
    if 300 <= exc.code < 400:
        return _Refused(
            exc.code, "", f"HTTP {exc.code}, redirected to {location}: give --server that URL"
        )
    try:
        status = msgspec.json.decode(exc.read(), type=_Status)
    except (msgspec.DecodeError, OSError, http.client.HTTPException):
        status = _Status()
    message = status.message.replace("\n", " ") or f"HTTP {exc.code} {exc.reason}"
    retry = exc.headers.get("Retry-After") if exc.headers else None
    if exc.code == 429 and retry:
        message += f" (retry after {retry} s)"
    return _Refused(exc.code, status.reason, message)


def _context(pem: bytes, source: str) -> ssl.SSLContext:
    """Verifies the server (certificate and host name) with ``pem`` alone."""
    try:
        return ssl.create_default_context(cadata=pem.decode("ascii"))
    except (ssl.SSLError, ValueError) as exc:
        why = _SSL_NOISE.sub("", str(exc))
        raise KubeconfigError(f"{source} does not load: {why}") from None


def _ask_username() -> str:
    """The user name from the terminal (the prompt on stderr: stdout is the kubeconfig)."""
    if not sys.stdin.isatty():
        raise KubeconfigError("no user name: give --username or set WEGENT_USERNAME")
    sys.stderr.write("username: ")
    sys.stderr.flush()
    name = sys.stdin.readline().strip()
    if not name:
        raise KubeconfigError("no user name given")
    return name


def _ask_password(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise KubeconfigError("no password: set WEGENT_PASSWORD or run on a terminal")
    try:
        password = getpass.getpass(prompt)
    except EOFError:
        password = ""
    if not password:
        raise KubeconfigError("no password given")
    return password
