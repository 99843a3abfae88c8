"""The Piccolo app: its tables and where its migrations live."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

import piccolo_migrations
from wegent.db.tables import TABLES

MIGRATIONS_FOLDER = Path(piccolo_migrations.__file__).resolve().parent

APP_CONFIG = AppConfig(
    app_name="wegent",
    migrations_folder_path=str(MIGRATIONS_FOLDER),
    table_classes=list(TABLES),
)
