"""docs/tokens.md stays true: its shell blocks run in order against a real server, and each
prints the answers the page shows (ids, times and secrets aside)."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import PASSWORD
from tests.k8s import conftest as k8s
from tests.k8s.conftest import TlsServer

served_tls = k8s.served_tls
served_tls_database = k8s.served_tls_database
served_tls_env = k8s.served_tls_env

PAGE = Path(__file__).resolve().parents[2] / "docs" / "tokens.md"
BLOCK = re.compile(r"^```(sh|json)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARK = "----- next block -----"
VARYING = [
    (re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"), "<time>"),
    (re.compile(r"^wg-[A-Za-z0-9_-]{43}$"), "<token>"),
    (re.compile(r"^wg-[A-Za-z0-9_-]{5}$"), "<prefix>"),
]


def examples(page: Path = PAGE) -> list[tuple[str, str]]:
    """(shell, the answers shown after it) for each shell block followed by a JSON block."""
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    pairs = []
    for (kind, text), (next_kind, shown) in itertools.pairwise(blocks):
        if kind == "sh" and next_kind == "json":
            pairs.append((text, shown))
    return pairs


def normalized(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: normalized(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalized(item) for item in value]
    if isinstance(value, str):
        for pattern, stands_for in VARYING:
            if pattern.match(value):
                return stands_for
    return value


def answers(text: str) -> list[Any]:
    return [normalized(json.loads(line)) for line in text.splitlines() if line.strip()]


def run_page(page: Path, server: TlsServer, blocks: int, tmp_path: Path) -> None:
    """Run the page's shell blocks in order in one bash, as alice (registered here) and with
    the admin's name and password in the environment; each must print the answers shown."""
    with httpx.Client(base_url=server.http_url) as http:
        registered = http.post(
            "/api/v1/auth/register", json={"username": "alice", "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
    pairs = examples(page)
    assert len(pairs) == blocks
    script = "\n".join(
        ["set -euo pipefail", f"W={server.http_url}", "JSON='Content-Type: application/json'"]
        + [f"{shell}\necho '{MARK}'" for shell, _ in pairs]
    )
    env = {
        **os.environ,
        "ADMIN_NAME": server.admin_username,
        "ADMIN_PASSWORD": server.admin_password,
    }
    run = subprocess.run(
        [shutil.which("bash") or "bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    printed = run.stdout.split(f"{MARK}\n")
    assert printed[-1] == ""
    assert len(printed) == len(pairs) + 1
    for (shell, shown), got in zip(pairs, printed, strict=False):
        assert answers(got) == answers(shown), (shell, got)


def test_every_example_prints_what_the_page_shows(served_tls: TlsServer, tmp_path: Path) -> None:
    run_page(PAGE, served_tls, 5, tmp_path)
