"""Logging for ``wegent serve`` (API.md §18): one format for every logger, uvicorn's included.

``WEGENT_LOG_FORMAT=text`` (the default) writes a line a person reads; ``json`` writes one JSON
object per line for a log pipeline: ``time``, ``level``, ``logger``, ``message``,
``request_id`` and, on access lines, ``method``, ``route``, ``path``, ``status``,
``duration_ms``, ``user`` and ``token`` (the token's name, never a secret). Every record gets the
id of the request being handled (``-`` outside of one). ``WEGENT_LOG_LEVEL`` sets the level.

Nothing here ever logs a header, a query string or a body: no password, token or secret can
reach a log line through it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec

from wegent.settings import Settings

#: The fields of an access line (``wegent.api.observe``), copied into its JSON object.
ACCESS_FIELDS = ("method", "route", "path", "status", "duration_ms", "user", "token")
TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_encode = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for field in ACCESS_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encode.encode(line).decode()


def log_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of the service, given to uvicorn (which applies it in
    every worker process)."""
    level = settings.log_level.upper()
    formatter: dict[str, Any] = (
        {"()": "wegent.logs.JsonFormatter"} if settings.log_format == "json" else {"format": TEXT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "wegent.request_context.RequestIdFilter"}},
        "formatters": {"wegent": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "wegent",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's own handlers would print a second, differently formatted line.
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            # The access log is the service's own (wegent.access), with route, user and id.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
