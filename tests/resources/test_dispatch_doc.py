"""docs/dispatch.md stays true: its shell blocks run in order against a real server, and each
prints the answers the page shows (times and secrets aside), as docs/tokens.md's do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx

from tests.auth.test_tokens_doc import MARK, answers, examples
from tests.helpers import PASSWORD
from tests.k8s import conftest as k8s
from tests.k8s.conftest import TlsServer

served_tls = k8s.served_tls
served_tls_database = k8s.served_tls_database
served_tls_env = k8s.served_tls_env

PAGE = Path(__file__).resolve().parents[2] / "docs" / "dispatch.md"


def test_every_example_prints_what_the_page_shows(served_tls: TlsServer, tmp_path: Path) -> None:
    with httpx.Client(base_url=served_tls.http_url) as http:
        registered = http.post(
            "/api/v1/auth/register", json={"username": "alice", "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
    pairs = examples(PAGE)
    assert len(pairs) == 7
    script = "\n".join(
        ["set -euo pipefail", f"W={served_tls.http_url}", "JSON='Content-Type: application/json'"]
        + [f"{shell}\necho '{MARK}'" for shell, _ in pairs]
    )
    run = subprocess.run(
        [shutil.which("bash") or "bash", "-c", script],
        cwd=tmp_path,
        env=dict(os.environ),
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
