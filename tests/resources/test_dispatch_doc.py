"""docs/dispatch.md stays true: its shell blocks run in order against a real server, and each
prints the answers the page shows (times and secrets aside), as docs/tokens.md's do."""

from __future__ import annotations

from pathlib import Path

from tests.auth.test_tokens_doc import run_page
from tests.k8s import conftest as k8s
from tests.k8s.conftest import TlsServer

served_tls = k8s.served_tls
served_tls_database = k8s.served_tls_database
served_tls_env = k8s.served_tls_env

PAGE = Path(__file__).resolve().parents[2] / "docs" / "dispatch.md"


def test_every_example_prints_what_the_page_shows(served_tls: TlsServer, tmp_path: Path) -> None:
    run_page(PAGE, served_tls, 7, tmp_path)
