"""Prometheus metrics (API.md §18), with the official client, correct with several workers.

Every metric is defined here, once per process. With several worker processes ``wegent serve``
gives them one ``PROMETHEUS_MULTIPROC_DIR`` before they start: each process then keeps its
values in files there, and ``/metrics`` (any worker) adds them up with the client's
``MultiProcessCollector`` (gauges: the sum over live processes). Without it, values are plain
memory and ``/metrics`` reads this process's registry.

The request metrics are written by the front layer (``wegent.api.observe``) for every request,
whichever door answers it; the label children are looked up once and kept, so a request pays
two increments and an observation.
"""

from __future__ import annotations

import contextlib
import glob
import os
import platform
import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from wegent import __version__

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Seconds: from 0.5 ms (a cached read) to 10 s (the statement timeout's order).
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

REQUESTS = Counter(
    "wegent_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "wegent_http_request_duration_seconds",
    "Time from a request's arrival to its answer's head (a watch: to its stream's start).",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "wegent_http_requests_in_flight",
    "Requests being answered now (watch streams count until their head is sent).",
    multiprocess_mode="livesum",
)
REFUSED = Counter(
    "wegent_http_requests_refused",
    "Requests refused before any route ran, by reason: busy (the in-flight limit), too_large, "
    "timeout (the body did not arrive), bad_query.",
    ["reason"],
)
POOL_IN_USE = Gauge(
    "wegent_db_pool_connections_in_use",
    "Database connections lent out of the pool now.",
    multiprocess_mode="livesum",
)
POOL_IDLE = Gauge(
    "wegent_db_pool_connections_idle",
    "Open database connections in the pool, not lent out.",
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "wegent_db_pool_waiting",
    "Requests waiting for a database connection now.",
    multiprocess_mode="livesum",
)
WATCHES_OPEN = Gauge(
    "wegent_watch_streams_open",
    "Watch streams open now.",
    multiprocess_mode="livesum",
)
WATCH_EVENTS = Counter(
    "wegent_watch_events_sent", "Watch events sent, by type (ADDED, MODIFIED, …).", ["type"]
)
LOGIN_FAILURES = Counter(
    "wegent_login_failures", "Logins refused for a wrong name, password or a disabled user."
)
LOGIN_THROTTLED = Counter(
    "wegent_login_throttled", "Logins refused with 429: too many failures for the account."
)
TASKS_CLAIMED = Counter("wegent_tasks_claimed", "Tasks claimed by executors (API.md §17).")
LEASES_EXPIRED = Counter(
    "wegent_task_leases_expired",
    "Executor leases found expired by a claim: the task claimed again, or FAILED after "
    "spec.maxAttempts expired leases.",
)
BUILD = Gauge(
    "wegent_build_info",
    "The running service: its version and Python's (always 1).",
    ["version", "python"],
    multiprocess_mode="max",
)
BUILD.labels(__version__, platform.python_version()).set(1)

_LIVE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db$")


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR))


def exposition() -> bytes:
    """The text format of every metric: this process's, or every worker's added up."""
    if not multiprocess():
        return generate_latest(REGISTRY)
    _forget_dead_workers()
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def worker_exited() -> None:
    """This process stops: its live gauges (in flight, pool, watches) stop counting."""
    if multiprocess():
        _multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _forget_dead_workers() -> None:
    """Live gauges of a worker that died without stopping (killed, crashed) stop counting."""
    for path in glob.glob(os.path.join(os.environ[MULTIPROCESS_DIR], "gauge_live*_*.db")):
        found = _LIVE_FILE.search(path)
        if found is not None and not _alive(int(found.group(1))):
            _multiprocess.mark_process_dead(int(found.group(1)))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_directory(path: str) -> None:
    """An empty directory for the workers' files (the client's rule: wiped between runs)."""
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(stale)
