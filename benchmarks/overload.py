"""Overload and memory: every request answered at 512 connections; a steady RSS under load.

One command: ``python benchmarks/overload.py``. It starts its own embedded PostgreSQL and
``wegent serve`` (defaults: one worker, ``WEGENT_MAX_IN_FLIGHT=256``), then

1. drives GET one Ghost with wrk at 512 connections while a probe thread asks ``/healthz``
   every 100 ms: every request must be answered (served, or refused fast with 503) — wrk
   timeouts and connection errors must be zero — and every probe must answer 200 within 1 s;
2. runs a mixed load (reads and creates, 64 connections) for a minute and compares the
   service's RSS after 10 s with its RSS at the end: target within 20 %.

Results go to ``benchmarks/results/overload.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from run import (
    BY_KEY,
    RESULTS,
    Stack,
    ensure_wrk,
    request,
    run_wrk,
)
from stand import stand_up

RSS_TARGET = 0.20


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def probe(port: int, stop: threading.Event, results: list[tuple[int, float]]) -> None:
    """``/healthz`` every 100 ms: (status or 0 on error, seconds taken)."""
    while not stop.is_set():
        start = time.monotonic()
        try:
            status, _ = request(port, "GET", "/healthz", timeout=5)
        except OSError:
            status = 0
        results.append((status, time.monotonic() - start))
        stop.wait(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overload-seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=512)
    parser.add_argument("--soak-seconds", type=int, default=60)
    args = parser.parse_args(argv)
    wrk = ensure_wrk()
    stack = Stack()
    try:
        return run(args, wrk, stack)
    finally:
        stack.close()


def run(args: argparse.Namespace, wrk: str, stack: Stack) -> int:
    stand = stand_up(stack, "overload", 150)
    port, proc = stand.port, stand.proc
    bench = stand.bench(wrk, 150)

    probes: list[tuple[int, float]] = []
    stop = threading.Event()
    prober = threading.Thread(target=probe, args=(port, stop, probes), daemon=True)
    prober.start()
    overload = run_wrk(bench, "service", BY_KEY["get"], args.connections, args.overload_seconds)
    stop.set()
    prober.join()
    errors = overload.get("errors", {})
    unanswered = sum(errors.get(k, 0) for k in ("connect", "read", "write", "timeout"))
    slow_probes = [p for p in probes if p[0] != 200 or p[1] > 1.0]
    overload_ok = unanswered == 0 and not slow_probes and bool(probes)
    print(
        f"{args.connections} connections, {args.overload_seconds} s: "
        f"{overload.get('requests')} requests, non-2xx (fast 503s) {errors.get('status', 0)}, "
        f"unanswered {unanswered}; /healthz probes {len(probes)}, failed or > 1 s "
        f"{len(slow_probes)}, slowest {max((p[1] for p in probes), default=0):.3f} s "
        f"→ {'PASS' if overload_ok else 'FAIL'}",
        flush=True,
    )

    samples: list[tuple[float, int]] = []
    start = time.monotonic()
    mixed = [BY_KEY["get"], BY_KEY["list"], BY_KEY["create_ghost"]]
    while time.monotonic() - start < args.soak_seconds:
        for op in mixed:
            run_wrk(bench, "service", op, 64, 5)
            samples.append((round(time.monotonic() - start, 1), rss_kib(proc.pid)))
    early = next((kib for t, kib in samples if t >= 10), samples[0][1])
    late = samples[-1][1]
    growth = (late - early) / early if early else 0.0
    rss_ok = abs(growth) <= RSS_TARGET
    print(
        f"RSS after ~10 s {early / 1024:.1f} MiB, after {samples[-1][0]:.0f} s "
        f"{late / 1024:.1f} MiB: {growth:+.1%} (target within ±{RSS_TARGET:.0%}) "
        f"→ {'PASS' if rss_ok else 'FAIL'}",
        flush=True,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {
        "overload": {
            "connections": args.connections,
            "requests": overload.get("requests"),
            "errors": errors,
            "probes": len(probes),
            "probes_failed_or_slow": len(slow_probes),
            "pass": overload_ok,
        },
        "rss_kib": samples,
        "rss_growth": round(growth, 3),
        "rss_pass": rss_ok,
    }
    (RESULTS / "overload.json").write_text(json.dumps(out, indent=2))
    return 0 if overload_ok and rss_ok else 1


if __name__ == "__main__":
    sys.exit(main())
