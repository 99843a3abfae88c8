"""The Piccolo app: its tables and where its migrations live.

The migrations are kept in the repository's top-level ``piccolo_migrations/`` and installed
as :mod:`wegent.piccolo_migrations` (pyproject.toml maps the folder under the package), so
they are no top-level name in site-packages; a source tree that is not installed (the
repository on ``sys.path``) still has them under their own name.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from piccolo.conf.apps import AppConfig

from wegent.db.tables import TABLES

APP_NAME = "wegent"


def migrations_folder() -> Path:
    """``wegent.piccolo_migrations`` when installed (editable or not), else ``piccolo_migrations``
    (a source tree on ``sys.path``)."""
    for name in ("wegent.piccolo_migrations", "piccolo_migrations"):
        try:
            package = importlib.import_module(name)
        except ModuleNotFoundError:  # pragma: no cover - one of the two layouts
            continue
        return Path(str(package.__file__)).resolve().parent
    raise ModuleNotFoundError("no piccolo_migrations: wegent is not installed")  # pragma: no cover


MIGRATIONS_FOLDER = migrations_folder()

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=str(MIGRATIONS_FOLDER),
    table_classes=list(TABLES),
)
