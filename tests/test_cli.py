"""``wegent`` on the command line: bad settings are one line; ``serve`` serves and stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from wegent.cli import main


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
