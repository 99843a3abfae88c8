"""Reading ``GET /metrics`` in tests: samples by name and labels, and what moved between two
readings (API.md §18)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, tuple[tuple[str, str], ...]]  # a sample's name and its sorted labels
REQUESTS = "wegent_http_requests_total"
LATENCY_COUNT = "wegent_http_request_duration_seconds_count"
REFUSED = "wegent_http_requests_refused_total"


def parse(text: str) -> dict[Key, float]:
    """Every sample of Prometheus' text format, by name and labels."""
    values: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(values: dict[Key, float], name: str, **labels: str) -> float:
    """One sample's value (0 when absent, as Prometheus reads a series not yet written)."""
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(
    before: dict[Key, float], after: dict[Key, float], name: str
) -> dict[tuple[str, ...], float]:
    """The samples of ``name`` that changed, by their label values (in the labels' name order):
    ``{("GET", "/metrics", "200"): 1.0}`` for ``wegent_http_requests_total``."""
    changed: dict[tuple[str, ...], float] = {}
    for key in before.keys() | after.keys():
        if key[0] != name:
            continue
        delta = after.get(key, 0.0) - before.get(key, 0.0)
        if delta:
            changed[tuple(v for _, v in key[1])] = delta
    return changed
