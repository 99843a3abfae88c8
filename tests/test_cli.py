"""``wegent`` on the command line: bad settings are one line; ``serve`` serves and stops."""

from __future__ import annotations

import contextlib
import datetime
import http.server
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from wegent import tls
from wegent.cli import main
from wegent.kubeconfig import PLAIN_HTTP, default_token_name
from wegent.names import is_name


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEGENT_")}
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WEGENT_DATABASE_URL": "mysql://x/y"}, "must be a PostgreSQL DSN"),
        (
            {"WEGENT_DATABASE_URL": "postgresql://u:p@h/db", "WEGENT_JWT_SECRET": "short"},
            "at least 32",
        ),
        (
            {
                "WEGENT_DATABASE_URL": "postgresql://u:p@127.0.0.1:1/db",
                "WEGENT_JWT_SECRET": "j" * 32,
                "WEGENT_SECRET_KEY": "k" * 32,
            },
            "cannot connect to the database",
        ),
    ],
)
def test_bad_settings_fail_with_one_line(env: dict[str, str], expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wegent.cli", "serve"],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = [
        line
        for line in result.stderr.splitlines()
        if not line.startswith(" ") and "Warn" not in line
    ]
    assert len([line for line in lines if line.startswith("wegent: ")]) == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_main_returns_2_on_settings_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEGENT_PORT", "nope")
    assert main(["migrate"]) == 2
    assert capsys.readouterr().err == "wegent: WEGENT_PORT must be an integer, got 'nope'\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_probes_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wegent.cli", "serve", "--port", str(port)],
        env=clean_env(WEGENT_DATA_DIR=str(tmp_path)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None and ready.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    # uvicorn re-raises the signal after a clean shutdown, the conventional way to report it.
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    # The embedded server stopped with the service.
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()


def test_create_admin_creates_then_promotes(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import TEST_KEY, TEST_SECRET

    for name, value in {
        "WEGENT_DATABASE_URL": database_url,
        "WEGENT_JWT_SECRET": TEST_SECRET,
        "WEGENT_SECRET_KEY": TEST_KEY,
        "WEGENT_ARGON2_PROFILE": "test",
        "WEGENT_ADMIN_PASSWORD": "first password",
    }.items():
        monkeypatch.setenv(name, value)
    username = f"cli-admin-{os.getpid()}-{int(time.time() * 1000) % 100000}"
    assert main(["create-admin", username]) == 0
    assert capsys.readouterr().out == f"admin {username}: created\n"
    monkeypatch.setenv("WEGENT_ADMIN_PASSWORD", "second password")
    assert main(["create-admin", username]) == 0
    assert capsys.readouterr().out == f"admin {username}: promoted\n"
    monkeypatch.setenv("WEGENT_ADMIN_PASSWORD", "short")
    assert main(["create-admin", username]) == 2
    assert "8 to 128 characters" in capsys.readouterr().err
    monkeypatch.setenv("WEGENT_ADMIN_PASSWORD", "long enough")
    assert main(["create-admin", "public"]) == 2
    assert capsys.readouterr().err == 'wegent: username "public" is reserved\n'


# ``wegent migrate``: the database settings only; --list; --backwards asks for --to and --yes.


def only_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """The service's variables exactly as given (the suite's own WEGENT_TEST_* stay)."""
    for name in os.environ:
        if name.startswith("WEGENT_") and not name.startswith("WEGENT_TEST_"):
            monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def scratch_url(make_database: object) -> str:
    return await make_database()  # type: ignore[operator, no-any-return]


def listing(applied: int) -> str:
    from wegent.db.migrate import known_migrations

    return "".join(
        f"{'applied' if i < applied else 'pending'}  {m.id}  {m.description}\n"
        for i, m in enumerate(known_migrations())
    )


def test_migrate_needs_no_secrets_and_makes_no_certificate(
    scratch_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.db.test_migrations import migration_ids

    ids = migration_ids()
    only_env(
        monkeypatch,
        WEGENT_DATABASE_URL=scratch_url,
        WEGENT_DATA_DIR=str(tmp_path),
        WEGENT_TLS="self-signed",  # read by the service only
        WEGENT_MIGRATE_ON_START="false",  # the service's start: `wegent migrate` migrates
    )
    assert main(["migrate", "--list"]) == 0
    assert capsys.readouterr() == (listing(0), "")
    assert main(["migrate"]) == 0
    out, err = capsys.readouterr()
    assert (out.count("[forwards]"), err) == (len(ids), "")
    assert main(["migrate", "--list"]) == 0
    assert capsys.readouterr() == (listing(len(ids)), "")
    assert main(["migrate"]) == 0
    assert "No migrations need to be run" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # no secrets kept, no certificate made


def test_migrate_backwards_needs_to_and_yes(
    scratch_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.db.test_migrations import migration_ids

    ids = migration_ids()
    only_env(monkeypatch, WEGENT_DATABASE_URL=scratch_url, WEGENT_DATA_DIR=str(tmp_path))
    assert main(["migrate", "--backwards"]) == 2
    assert capsys.readouterr() == (
        "",
        "wegent: --backwards needs --to ID, the newest migration to keep (zero keeps none), "
        "and --yes; no migration is applied (`wegent migrate --list`)\n",
    )
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["migrate", "--backwards", "--yes"]) == 2
    assert capsys.readouterr() == (
        "",
        "wegent: --backwards needs --to ID, the newest migration to keep (zero keeps none), "
        f"and --yes; {len(ids)} migrations applied, the newest {ids[-1]} "
        "(`wegent migrate --list`)\n",
    )
    assert main(["migrate", "--backwards", "--to", ids[-3]]) == 2
    assert capsys.readouterr() == (
        "",
        f"wegent: --backwards --to {ids[-3]} would undo 2 migrations, newest first: "
        f"{ids[-1]}, {ids[-2]}; nothing was changed: add --yes to undo them\n",
    )
    assert main(["migrate", "--backwards", "--to", "zero"]) == 2
    assert capsys.readouterr().err.startswith(
        f"wegent: --backwards --to zero would undo {len(ids)} migrations, newest first: "
        f"{ids[-1]}, {ids[-2]}, "
    )
    assert main(["migrate", "--backwards", "--to", "nope", "--yes"]) == 2
    assert capsys.readouterr().err == (
        "wegent: --to nope is not an applied migration (`wegent migrate --list` shows them; "
        "--to zero undoes all)\n"
    )
    assert main(["migrate", "--to", ids[-3], "--yes"]) == 2
    assert capsys.readouterr().err == "wegent: --to and --yes go with --backwards\n"
    assert main(["migrate", "--list"]) == 0  # nothing was changed
    assert capsys.readouterr().out == listing(len(ids))

    assert main(["migrate", "--backwards", "--to", ids[-3], "--yes"]) == 0
    assert capsys.readouterr().out.count("[backwards]") == 2
    assert main(["migrate", "--list"]) == 0
    assert capsys.readouterr().out == listing(len(ids) - 2)
    assert main(["migrate", "--backwards", "--to", ids[-3]]) == 0
    assert capsys.readouterr().out == (
        f"nothing to undo: {ids[-3]} is the newest applied migration\n"
    )
    assert main(["migrate", "--backwards", "--to", "zero", "--yes"]) == 0
    assert capsys.readouterr().out.count("[backwards]") == len(ids) - 2
    assert main(["migrate", "--list"]) == 0
    assert capsys.readouterr().out == listing(0)


def test_without_migrate_on_start_serve_and_create_admin_refuse_a_schema_behind(
    scratch_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.conftest import TEST_KEY, TEST_SECRET
    from tests.db.test_migrations import migration_ids

    ids = migration_ids()
    only_env(
        monkeypatch,
        WEGENT_DATABASE_URL=scratch_url,
        WEGENT_DATA_DIR=str(tmp_path),
        WEGENT_JWT_SECRET=TEST_SECRET,
        WEGENT_SECRET_KEY=TEST_KEY,
        WEGENT_ADMIN_PASSWORD="long enough",
        WEGENT_MIGRATE_ON_START="false",
    )
    behind = (
        f"wegent: the database schema is behind: run `wegent migrate` (pending: {', '.join(ids)})\n"
    )
    assert main(["serve"]) == 2
    assert capsys.readouterr() == ("", behind)
    assert main(["create-admin", "root"]) == 2
    assert capsys.readouterr() == ("", behind)
    assert main(["migrate", "--list"]) == 0
    assert capsys.readouterr().out == listing(0)  # nothing was migrated


# ``wegent kubeconfig`` without a server: its options, its prompts, answers that are not the
# Wegent API. tests/k8s/test_kubeconfig.py runs it against a real server and kubectl.


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--server", "ftp://example.com"],
            "--server must be an http:// or https:// URL, got 'ftp://example.com'",
        ),
        (["--server", "https://"], "--server must be an http:// or https:// URL, got 'https://'"),
        (
            ["--server", "https://a:b@host"],
            "--server must be an http:// or https:// URL, got 'https://a:b@host'",
        ),
        (
            ["--server", "https://host:99999"],
            "--server must be an http:// or https:// URL, got 'https://host:99999'",
        ),
        (
            ["--server", "https://host", "--token-name=-laptop"],
            "--token-name must be 1 to 63 letters, digits, '.', '_' or '-', starting and ending "
            "with a letter or digit, got '-laptop'",
        ),
        (
            ["--server", "https://host", "--token-name", "x" * 64],
            "--token-name must be 1 to 63 letters, digits, '.', '_' or '-', starting and ending "
            f"with a letter or digit, got '{'x' * 64}'",
        ),
        (
            ["--server", "https://host", "--expires-in-days", "366"],
            "--expires-in-days must be between 1 and 365, got 366",
        ),
        (
            ["--server", "http://host", "--certificate-authority", "ca.pem"],
            "--certificate-authority needs an https:// --server",
        ),
    ],
)
def test_kubeconfig_options(
    args: list[str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Server settings are not read: a bad one changes nothing.
    monkeypatch.setenv("WEGENT_PORT", "nope")
    assert main(["kubeconfig", *args]) == 2
    assert capsys.readouterr() == ("", f"wegent: {expected}\n")


def test_kubeconfig_certificate_authority_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEGENT_USERNAME", "alice")
    server = ["kubeconfig", "--server", "https://127.0.0.1:1", "--certificate-authority"]
    missing = tmp_path / "missing.pem"
    assert main([*server, str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"wegent: --certificate-authority: cannot read {missing}: No such file or directory\n"
    )
    key = tmp_path / "key.pem"
    key.write_bytes(tls.self_signed_pair(["localhost"])[1])
    assert main([*server, str(key)]) == 2
    assert capsys.readouterr().err == (
        f"wegent: --certificate-authority: {key} holds no PEM certificate\n"
    )
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert main([*server, str(broken)]) == 2
    assert capsys.readouterr().err.startswith(
        f"wegent: --certificate-authority: {broken} does not load: "
    )


def test_kubeconfig_default_token_name() -> None:
    at = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert default_token_name("vm", at) == "kubeconfig-vm-20260102T030405Z"
    assert default_token_name("Work.example.com", at) == (
        "kubeconfig-Work.example.com-20260102T030405Z"
    )
    assert default_token_name("läptop_1", at) == "kubeconfig-l-ptop_1-20260102T030405Z"
    assert default_token_name("-._", at) == "kubeconfig-20260102T030405Z"
    local = datetime.timezone(datetime.timedelta(hours=2))
    assert default_token_name("vm", at.astimezone(local)) == "kubeconfig-vm-20260102T030405Z"
    long = default_token_name("h" * 30 + "." + "x" * 100, at)
    assert long == f"kubeconfig-{'h' * 30}.xx-20260102T030405Z"
    assert len(long) == 61 and is_name(long + "-9")
    assert default_token_name("h" * 32 + ".x", at) == f"kubeconfig-{'h' * 32}-20260102T030405Z"


def test_kubeconfig_default_token_name_taken(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A default name taken (two kubeconfigs in one second) is followed by -2, ... -9."""
    monkeypatch.setenv("WEGENT_PASSWORD", "pw")
    monkeypatch.setattr("socket.gethostname", lambda: "vm")
    taken: Answer = (409, b'{"reason": "AlreadyExists", "message": "taken"}', {})
    made: Answer = (201, b'{"token": "wg-x"}', {})
    args = ["kubeconfig", "--username", "alice", "--server"]
    with _StubServer() as url:
        _StubServer.answers["/api/v1/auth/login"] = (200, b'{"access_token": "jwt"}', {})
        _StubServer.answers["/api/v1/users/me"] = (200, b'{"username": "alice"}', {})
        _StubServer.answers["/api/v1/tokens"] = [taken, taken, made]
        assert main([*args, url]) == 0
        names = [
            str(body["name"])  # type: ignore[index]
            for _, path, _, body in _StubServer.requests
            if path == "/api/v1/tokens"
        ]
        assert re.fullmatch(r"kubeconfig-vm-\d{8}T\d{6}Z", names[0]), names
        assert names == [names[0], f"{names[0]}-2", f"{names[0]}-3"]
        capsys.readouterr()
        _StubServer.answers["/api/v1/tokens"] = [taken] * 9
        assert main([*args, url]) == 2
        assert capsys.readouterr() == (
            "",
            "wegent: cannot create the API token: taken (choose another with --token-name)\n",
        )
        assert [path for _, path, _, _ in _StubServer.requests[6:]] == [
            "/version",
            "/api/v1/auth/login",
            "/api/v1/users/me",
            *["/api/v1/tokens"] * 9,
        ]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_kubeconfig_prompts_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user name is asked on stderr (stdout is the kubeconfig), the password by getpass;
    an empty answer is refused."""
    asked: list[str] = []
    answers = ["", "", "secret"]

    def getpass(prompt: str) -> str:
        asked.append(prompt)
        answer = answers.pop(0)
        if answer == "" and len(answers) == 1:
            raise EOFError  # Ctrl-D
        return answer

    monkeypatch.delenv("WEGENT_USERNAME", raising=False)
    monkeypatch.delenv("WEGENT_PASSWORD", raising=False)
    monkeypatch.setattr("getpass.getpass", getpass)
    with _StubServer() as url:
        monkeypatch.setattr("sys.stdin", _Tty("alice\n"))
        assert main(["kubeconfig", "--server", url]) == 2
        assert capsys.readouterr() == ("", "username: wegent: no password given\n")
        assert asked == [f"password of alice at {url}: "]
        assert main(["kubeconfig", "--server", url, "--username", "bob"]) == 2
        assert capsys.readouterr() == ("", "wegent: no password given\n")
        assert main(["kubeconfig", "--server", url, "--username", "bob"]) == 2
        assert capsys.readouterr() == (
            "",
            'wegent: login as "bob" failed: HTTP 404 Not Found\n',
        )
        assert _StubServer.requests[-1] == (
            "POST",
            "/api/v1/auth/login",
            None,
            {"username": "bob", "password": "secret"},
        )
        monkeypatch.setattr("sys.stdin", _Tty("\n"))
        assert main(["kubeconfig", "--server", url]) == 2
        assert capsys.readouterr() == ("", "username: wegent: no user name given\n")


def test_kubeconfig_answers_that_are_not_the_wegent_api(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEGENT_PASSWORD", "pw")
    args = ["kubeconfig", "--username", "alice", "--server"]
    with _StubServer() as url:
        _StubServer.answers["/api/v1/auth/login"] = (302, b"", {"Location": "https://x/"})
        assert main([*args, url]) == 2
        assert capsys.readouterr() == (
            "",
            'wegent: login as "alice" failed: HTTP 302, redirected to https://x/: '
            "give --server that URL\n",
        )
        _StubServer.answers["/api/v1/auth/login"] = (429, b"<html>", {"Retry-After": "30"})
        assert main([*args, url]) == 2
        assert capsys.readouterr().err == (
            'wegent: login as "alice" failed: HTTP 429 Too Many Requests (retry after 30 s)\n'
        )
        _StubServer.answers["/api/v1/auth/login"] = (200, b'{"token": "x"}', {})
        assert main([*args, url + "/prefix/"]) == 2
        assert capsys.readouterr().err == (
            f"wegent: {url}/prefix/api/v1/auth/login answered something other than the Wegent API\n"
        )
        _StubServer.answers["/api/v1/auth/login"] = (200, b'{"access_token": "jwt"}', {})
        _StubServer.answers["/api/v1/users/me"] = (401, b'{"message": "expired"}', {})
        assert main([*args, url]) == 2
        assert capsys.readouterr().err == "wegent: cannot read the user: expired\n"
        _StubServer.answers["/api/v1/users/me"] = (200, b'{"username": "alice"}', {})
        _StubServer.answers["/api/v1/tokens"] = (
            403,
            b'{"reason": "Forbidden", "message": "limit reached"}',
            {},
        )
        assert main([*args, url]) == 2
        assert capsys.readouterr().err == "wegent: cannot create the API token: limit reached\n"
        _StubServer.answers["/api/v1/tokens"] = (0, b"", {})  # closed, no answer
        assert main([*args, url]) == 2
        assert capsys.readouterr().err == (
            f"wegent: cannot reach {url}: Remote end closed connection without response\n"
        )
        _StubServer.answers["/api/v1/tokens"] = (-1, b"", {})  # too slow
        monkeypatch.setattr("wegent.kubeconfig.TIMEOUT_S", 0.2)
        assert main([*args, url]) == 2
        assert capsys.readouterr().err == f"wegent: cannot reach {url}: no answer within 0.2 s\n"
        monkeypatch.setattr("wegent.kubeconfig.TIMEOUT_S", 30.0)
        _StubServer.answers["/api/v1/tokens"] = (201, b'{"token": "wg-x"}', {})
        assert main([*args, url, "--token-name", "t"]) == 0
        out, err = capsys.readouterr()
        assert err == f"wegent: warning: {PLAIN_HTTP}\n"
        assert yaml.safe_load(out)["users"][0]["user"] == {"token": "wg-x"}
        assert _StubServer.requests[-1] == (
            "POST",
            "/api/v1/tokens",
            "Bearer jwt",
            {"name": "t"},
        )


Answer = tuple[int, bytes, dict[str, str]]


class _StubServer:
    """A local HTTP server answering ``answers[path]`` (any prefix of the path stripped) and
    recording each request; 404 for what it does not know."""

    answers: dict[str, Answer | list[Answer]] = {}
    requests: list[tuple[str, str, str | None, object]] = []

    def __enter__(self) -> str:
        _StubServer.answers = {}
        _StubServer.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                path = "/" + self.path.split("/", 1)[1]
                for known in _StubServer.answers:
                    if self.path.endswith(known):
                        path = known
                _StubServer.requests.append(
                    (self.command, path, self.headers.get("Authorization"), body)
                )
                answer = _StubServer.answers.get(path, (404, b"", {}))
                if isinstance(answer, list):  # one answer per request, in turn
                    answer = answer.pop(0)
                code, data, headers = answer
                if code == 0:
                    self.close_connection = True
                    return
                if code == -1:
                    time.sleep(1)
                    code = 500
                with contextlib.suppress(OSError):  # the client may have given up
                    self.send_response(code)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
