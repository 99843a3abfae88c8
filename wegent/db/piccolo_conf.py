"""Piccolo's configuration: the app registry and the engine, for Piccolo's migration machinery.

The service names this module in ``PICCOLO_CONF`` whenever it migrates
(``wegent.db.migrate``), so ``DB`` is the engine of the running database. Read from Piccolo's
own command line (through the repository's top-level ``piccolo_conf.py``), ``DB`` is built from
the ``WEGENT_*`` settings a migration needs (starting the embedded server when no URL is set;
no signing secrets needed).
"""

from __future__ import annotations

from typing import Any

from piccolo.conf.apps import AppRegistry

APP_REGISTRY = AppRegistry(apps=["wegent.db.piccolo_app"])


def __getattr__(name: str) -> Any:
    if name != "DB":
        raise AttributeError(name)
    from wegent.db.engine import current_engine

    engine = current_engine()
    if engine is None:
        engine = _engine_from_settings()
    return engine


def _engine_from_settings() -> Any:
    """Resolve the DSN on a thread of its own: Piccolo may ask from inside its event loop."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from piccolo.engine.postgres import PostgresEngine

    from wegent.db.engine import Database
    from wegent.settings import load_settings

    db = Database(load_settings(database_only=True))
    with ThreadPoolExecutor(max_workers=1) as pool:
        url = pool.submit(asyncio.run, db.resolve_url()).result()
    return PostgresEngine(config={"dsn": url, **db.engine_options()}, extensions=())
