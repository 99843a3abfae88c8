"""What the front layer records of every request (API.md §18): its id, its metrics and its
access log line, whichever door answers it.

- ``X-Request-ID``: the client's when it is printable ASCII of at most 128 characters, else a
  new one; echoed on the answer (errors and refusals included) and on every log line written
  while the request is handled (:class:`RequestIdFilter` reads it from a context variable).
- Metrics: the request count and latency by method, route template and status, taken when the
  answer's head is sent (a watch: when its stream starts). The route is the template the
  request matched (``/api/v1/namespaces/{namespace}/ghosts/{name}``), never the raw path, so
  object names never become label values; an unknown method is ``OTHER``.
- The access log line (``WEGENT_ACCESS_LOG``): method, route, path, status, duration, user,
  request id — never a header, a query or a body.

``WEGENT_METRICS=false`` records no metric at all (``Observer.counts`` is false): request ids
and the access log stay.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from wegent import metrics
from wegent.request_context import Seen

access_log = logging.getLogger("wegent.access")


def sample(in_flight: int, pool: tuple[int, int, int], watches: int) -> None:
    """Set the gauges from one process's counts (every second, and before an exposition):
    nothing on the request path pays for them."""
    metrics.IN_FLIGHT.set(in_flight)
    metrics.POOL_IN_USE.set(pool[0])
    metrics.POOL_IDLE.set(pool[1])
    metrics.POOL_WAITING.set(pool[2])
    metrics.WATCHES_OPEN.set(watches)


class Observer:
    """Records the answers of one app's requests: metrics when ``counts``, the access log line
    when ``log_access``."""

    def __init__(self, log_access: bool, counts: bool = True) -> None:
        self.log_access = log_access
        self.counts = counts
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def refused(self, reason: str) -> None:
        """A request refused before any route ran (``busy``, ``too_large``, ``timeout``,
        ``bad_query``)."""
        if self.counts:
            metrics.REFUSED.labels(reason).inc()

    def answered(self, seen: Seen, status: int) -> None:
        """The answer's head goes out now: count it, time it, log it."""
        elapsed = time.perf_counter() - seen.started
        if self.counts:
            key = (seen.method, seen.route, status)
            children = self._children.get(key)
            if children is None:
                label = (seen.method, seen.route, str(status))
                children = (metrics.REQUESTS.labels(*label), metrics.LATENCY.labels(*label))
                if len(self._children) < 10_000:  # bounded: routes x methods x statuses
                    self._children[key] = children
            children[0].inc()
            children[1].observe(elapsed)
        if self.log_access:
            access_log.info(
                '%s %s "%s" %d %.1fms user=%s',
                seen.method,
                seen.route,
                seen.path,
                status,
                elapsed * 1000,
                seen.user or "-",
                extra={
                    "method": seen.method,
                    "route": seen.route,
                    "path": seen.path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "user": seen.user,
                    "token": seen.token,
                },
            )
