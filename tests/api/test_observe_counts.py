"""The request metrics' plain counts (``wegent.api.observe``): a request adds to its label
set's counts, and :func:`flush_counts` moves them into the client's metrics with the buckets
and sum that observing each request would have given (API.md §18)."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY, generate_latest

from tests.metrics_text import parse, value
from wegent import metrics
from wegent.api import observe
from wegent.api.observe import Observer, flush_counts
from wegent.request_context import Seen

HISTOGRAM = "wegent_http_request_duration_seconds"


def answer(observer: Observer, route: str, took_s: float) -> None:
    seen = Seen("id", "GET", "/x")
    seen.route = route
    seen.started = time.perf_counter() - took_s
    observer.answered(seen, 200)


def samples(route: str) -> dict[str, float]:
    values = parse(generate_latest(REGISTRY).decode())
    labels = {"method": "GET", "route": route, "status": "200"}
    found = {"count": value(values, "wegent_http_requests_total", **labels)}
    for bound in ("0.0005", "0.005", "10.0", "+Inf"):
        found[bound] = value(values, f"{HISTOGRAM}_bucket", le=bound, **labels)
    found["sum"] = value(values, f"{HISTOGRAM}_sum", **labels)
    return found


def test_counts_reach_the_metrics_at_a_flush_with_the_buckets_of_each_request() -> None:
    route = "/test/counts/flushed"
    observer = Observer(log_access=False)
    for took in (0.0001, 0.003, 0.004, 20.0):
        answer(observer, route, took)
    assert samples(route)["count"] == 0  # not yet: counted in plain numbers
    flush_counts()
    got = samples(route)
    assert {k: got[k] for k in ("count", "0.0005", "0.005", "10.0", "+Inf")} == {
        "count": 4,
        "0.0005": 1,  # cumulative buckets, as Prometheus reads them
        "0.005": 3,
        "10.0": 3,
        "+Inf": 4,
    }
    assert got["sum"] == pytest.approx(20.0071, abs=0.001)
    flush_counts()  # a second flush adds nothing
    assert samples(route) == got
    answer(observer, route, 0.003)
    flush_counts()
    assert samples(route)["count"] == 5
    assert samples(route)["0.005"] == 4


def test_label_sets_past_the_bound_are_counted_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observe, "_MAX_TALLIES", 1)
    observer = Observer(log_access=False)
    answer(observer, "/test/counts/kept", 0.001)
    answer(observer, "/test/counts/loose", 0.001)
    assert samples("/test/counts/loose")["count"] == 1  # no flush needed
    assert samples("/test/counts/kept")["count"] == 0
    flush_counts()
    assert samples("/test/counts/kept")["count"] == 1


def test_with_several_workers_each_request_is_counted_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another worker's exposition reads this one's files: it cannot wait for a flush."""
    monkeypatch.setattr(metrics, "multiprocess", lambda: True)
    observer = Observer(log_access=False)
    answer(observer, "/test/counts/workers", 0.001)
    answer(observer, "/test/counts/workers", 0.001)
    assert samples("/test/counts/workers")["count"] == 2


def test_metrics_off_counts_nothing() -> None:
    observer = Observer(log_access=False, counts=False)
    answer(observer, "/test/counts/off", 0.001)
    flush_counts()
    assert samples("/test/counts/off")["count"] == 0
