"""What the front layer records of every request (API.md §18): its id, its metrics and its
access log line, whichever door answers it.

- ``X-Request-ID``: the client's when it is printable ASCII of at most 128 characters, else a
  new one; echoed on the answer (errors and refusals included) and on every log line written
  while the request is handled (:class:`RequestIdFilter` reads it from a context variable).
- Metrics: the request count and latency by method, route template and status, taken when the
  answer's head is sent (a watch: when its stream starts). The route is the template the
  request matched (``/api/v1/namespaces/{namespace}/ghosts/{name}``), never the raw path, so
  object names never become label values; an unknown method is ``OTHER``. A request adds to
  plain counts of its label set; :func:`flush_counts` moves the process's counts into the
  client's metrics every second and before every exposition (``wegent.app``), so an
  exposition counts every request answered before it. Measured: the client's ``inc`` and
  ``observe`` (a lock each, a bucket search) cost 2.1 µs a request, the plain counts ~0.5 µs
  (a GET's whole in-process cost is ~27 µs). With several workers (``PROMETHEUS_MULTIPROC_DIR``)
  an exposition adds up the other workers' files, which it cannot flush: there every request
  goes to the client's metrics at once, as before.
- The access log line (``WEGENT_ACCESS_LOG``): method, route, path, status, duration, user,
  request id — never a header, a query or a body.

``WEGENT_METRICS=false`` records no metric at all (``Observer.counts`` is false): request ids
and the access log stay.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from bisect import bisect_left
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


#: The latency histogram's upper bounds, +Inf last, as the client counts them: a duration goes
#: to the first bucket whose bound is at least it.
_BOUNDS = (*metrics.LATENCY_BUCKETS, math.inf)
#: Label sets with counts of their own at most (routes x methods x statuses are far fewer);
#: past it a request goes to the client's metrics directly.
_MAX_TALLIES = 10_000


class _Tally:
    """The requests of one label set since the last :meth:`Observer.flush`."""

    __slots__ = ("buckets", "count", "counter", "histogram", "loose", "total")

    def __init__(self, counter: Any, histogram: Any) -> None:
        self.counter, self.histogram = counter, histogram  # the client's children
        self.loose = False  # flushed after each request (see Observer._tally)
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * len(_BOUNDS)  # per bucket, not cumulative (as the client keeps them)

    def flush(self) -> None:
        if not self.count:
            return
        self.counter.inc(self.count)
        # The client has no call that adds n observations at once: its children's own values
        # (prometheus_client's Histogram keeps ``_sum`` and one ``_buckets`` value per bound).
        self.histogram._sum.inc(self.total)
        buckets = self.buckets
        for position, value in enumerate(self.histogram._buckets):
            if buckets[position]:
                value.inc(buckets[position])
                buckets[position] = 0
        self.count, self.total = 0, 0.0


def flush_counts() -> None:
    """Add the counts every observer of this process took since its last flush to the
    client's metrics (before an exposition: it then counts every request answered)."""
    for observer in list(_OBSERVERS):
        observer.flush()


class Observer:
    """Records the answers of one app's requests: metrics when ``counts``, the access log line
    when ``log_access``."""

    def __init__(self, log_access: bool, counts: bool = True) -> None:
        self.log_access = log_access
        self.counts = counts
        self._tallies: dict[tuple[str, str, int], _Tally] = {}
        # Several workers: each request at once (another worker's exposition reads the files).
        self._at_once = metrics.multiprocess()
        _OBSERVERS.add(self)

    def flush(self) -> None:
        """Add the counts taken since the last flush to the client's metrics."""
        for tally in self._tallies.values():
            tally.flush()

    def _tally(self, key: tuple[str, str, int]) -> _Tally:
        """A new label set's counts, kept while there is room; loose (flushed after each
        request) when not kept or with several workers."""
        method, route, status = key
        label = (method, route, str(status))
        tally = _Tally(metrics.REQUESTS.labels(*label), metrics.LATENCY.labels(*label))
        kept = len(self._tallies) < _MAX_TALLIES
        if kept:
            self._tallies[key] = tally
        tally.loose = self._at_once or not kept
        return tally

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
            tally = self._tallies.get(key) or self._tally(key)
            tally.count += 1
            tally.total += elapsed
            tally.buckets[bisect_left(_BOUNDS, elapsed)] += 1
            if tally.loose:
                tally.flush()
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


#: This process's observers (the app's; in tests, several apps'), for :func:`flush_counts`.
_OBSERVERS: weakref.WeakSet[Observer] = weakref.WeakSet()
