"""What the metrics cost: GET one Ghost with metrics on against metrics off, in one sitting.

    python benchmarks/metrics_cost.py [--duration S] [--rounds N] [--connections 16,64]

Starts its own embedded PostgreSQL, migrates it, and two ``wegent serve`` processes on the same
database with the same settings but one: ``WEGENT_METRICS=false`` for the second (it then
records no metric at all: ``wegent.api.observe``). Seeds them (through the first), checks that
both answer GET one with the same bytes and that only the first serves ``/metrics``, then
measures GET one with wrk on each, in alternating slices (on, off, off, on, ...: a load that
drifts while we measure falls on both alike), and reports req/s, p50/p99, server CPU per
request and the on/off ratio overall and per slice pair (the noise). Target: on ≥ 0.95 of off.
The helpers (servers, seeding, wrk, CPU accounting) are ``benchmarks/run.py``'s.
Writes ``benchmarks/results/metrics_cost.json`` and, unless ``--no-docs``, the results block of
the "Metrics cost" section of ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import run

TARGET = 0.95
SERVERS = ("on", "off")
OPS = ("get", "list")  # the first is the one with the target
START, END = "<!-- metrics-cost:start -->", "<!-- metrics-cost:end -->"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per server (30)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating slices per server (6)")
    parser.add_argument(
        "--connections",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[16, 64],
        help="comma-separated connection counts (16,64)",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per server (1)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds (2)")
    parser.add_argument(
        "--ops",
        type=lambda s: [x for x in s.split(",") if x],
        default=["get"],
        help="comma-separated subset of: " + ",".join(OPS) + " (get)",
    )
    parser.add_argument("--seeds", type=int, default=150, help="Ghosts seeded (150)")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/performance.md")
    args = parser.parse_args(argv)
    if unknown := [k for k in args.ops if k not in OPS]:
        parser.error(f"unknown operation(s): {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = run.ensure_wrk()
    stack = run.Stack()

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return measure(args, wrk, stack)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        stack.close()


def measure(args: argparse.Namespace, wrk: str, stack: run.Stack) -> int:
    from wegent.db.embedded import start_embedded, stop_embedded
    from wegent.db.engine import ensure_database

    tmp = Path(tempfile.mkdtemp(prefix="wegent-metrics-cost-"))
    stack.cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    print(f"work dir {tmp}; starting embedded PostgreSQL", flush=True)
    server = start_embedded(tmp / "pg")
    stack.cleanups.append(lambda: stop_embedded(server))
    asyncio.run(ensure_database(server.get_uri(), "wegent_bench"))
    url = server.get_uri(database="wegent_bench")
    env = {
        **os.environ,
        "WEGENT_DATABASE_URL": url,
        "WEGENT_DATA_DIR": str(tmp / "data"),
        "WEGENT_JWT_SECRET": secrets.token_urlsafe(48),
        "WEGENT_SECRET_KEY": secrets.token_urlsafe(48),
        "WEGENT_WORKERS": str(args.workers),
        "WEGENT_ARGON2_PROFILE": "test",
        "WEGENT_ACCESS_LOG": "false",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("WEGENT_METRICS", None)
    migrated = subprocess.run(
        [sys.executable, "-m", "wegent.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if migrated.returncode != 0:
        raise SystemExit(f"wegent migrate failed:\n{migrated.stdout}{migrated.stderr}")
    ports = {name: run.free_port() for name in SERVERS}
    envs = {"on": env, "off": {**env, "WEGENT_METRICS": "false"}}
    procs = {}
    for name in SERVERS:
        log = tmp / f"{name}.log"
        cmd = [sys.executable, "-m", "wegent.cli", "serve", "--port", str(ports[name])]
        procs[name] = stack.spawn(cmd, envs[name], log)
        run.wait_healthy(ports[name], procs[name], log)
    token, api_token = run.seed(ports["on"], args.seeds)
    asyncio.run(run.sql_execute(url, "VACUUM ANALYZE"))
    checks = check(ports, token)
    print("check: " + ", ".join(f"{k} {v}" for k, v in checks.items()), flush=True)
    if any("DIFFERENT" in v or "FAILED" in v for v in checks.values()):
        raise SystemExit("the two servers do not answer as expected")
    info = run.machine(url, args.workers, args.threads)
    print(f"load average before: {info['load_before']}", flush=True)
    bench = run.Bench(
        wrk=wrk,
        threads=args.threads,
        env={
            **os.environ,
            "WB_TOKEN": token,
            "WB_API_TOKEN": api_token,
            "WB_NS": run.USER,
            "WB_SEEDS": str(args.seeds),
            "WB_MODEL": run.MODEL,
            "WB_LUA": str(run.LUA),
        },
        ports=ports,
        pids={name: proc.pid for name, proc in procs.items()} | {"db": server.get_pid() or 0},
    )
    slice_s = max(1, round(args.duration / args.rounds))
    rows = []
    for key in args.ops:
        op = run.BY_KEY[key]
        for name in SERVERS:
            run.run_wrk(bench, name, op, args.connections[0], max(1, round(args.warmup)))
        for connections in args.connections:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVERS}
            for round_ in range(args.rounds):
                # on, off | off, on | on, off ...
                for name in SERVERS if round_ % 2 == 0 else SERVERS[::-1]:
                    runs[name].append(run.run_wrk(bench, name, op, connections, slice_s))
            row = summarize(op, connections, runs)
            rows.append(row)
            print(
                f"{op.title:16} c={connections:<3} req/s on {row['rps']['on']:,.0f} "
                f"off {row['rps']['off']:,.0f} on/off {row['ratio']:.3f} "
                f"(slices {', '.join(f'{r:.2f}' for r in row['slice_ratios'])}) "
                f"p99 on {row['p99_ms']['on']:.1f} off {row['p99_ms']['off']:.1f} ms "
                f"CPU/req on {row['app_cpu_us']['on']:.0f} off {row['app_cpu_us']['off']:.0f} µs",
                flush=True,
            )
    info["load_after"] = [round(x, 2) for x in os.getloadavg()]
    costs = micro()
    print(
        "Observer.answered, CPU µs per answer: "
        + ", ".join(f"{k} {v:.2f}" for k, v in costs.items())
    )
    report(args, info, checks, rows, costs)
    return 0 if all(r["pass"] for r in rows if r["op"] == "get") else 1


#: What the front layer's Observer costs per answer, alone, in CPU time (not wall time: the
#: machine's other tenants stretch the latter): metrics on, off, and on in the multiprocess
#: mode of several workers (values in mmap'ed files).
MICRO = """
import sys, time
from wegent.api.observe import Observer
from wegent.request_context import Seen
observer = Observer(False, sys.argv[1] == "on")
seen = Seen("id", "GET", "/api/v1/namespaces/bench/ghosts/seed-0001")
seen.route = "/api/v1/namespaces/{namespace}/ghosts/{name}"
best = float("inf")
for _ in range(5):
    start = time.process_time()
    for _ in range(100_000):
        observer.answered(seen, 200)
    best = min(best, time.process_time() - start)
print(best / 100_000 * 1e6)
"""


def micro() -> dict[str, float]:
    """CPU µs per answer of ``Observer.answered`` (best of five runs of 100,000), each mode in a
    fresh interpreter."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="wegent-micro-") as folder:
        modes = {
            "on": ("on", {}),
            "off": ("off", {}),
            "on, multiprocess": ("on", {"PROMETHEUS_MULTIPROC_DIR": folder}),
        }
        for label, (mode, extra) in modes.items():
            env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
            done = subprocess.run(
                [sys.executable, "-c", MICRO, mode],
                env={**env, **extra},
                capture_output=True,
                text=True,
                check=True,
            )
            out[label] = float(done.stdout.strip())
    return out


def check(ports: dict[str, int], token: str) -> dict[str, str]:
    """Both servers answer GET one with the same bytes; only the first serves /metrics."""
    path = f"/api/v1/namespaces/{run.USER}/ghosts/seed-0000"
    on, off = (run.request(ports[name], "GET", path, None, token) for name in SERVERS)
    same = "FAILED" if on[0] != 200 else "identical bytes" if on == off else "DIFFERENT bytes"
    metrics = (
        run.request(ports["on"], "GET", "/metrics")[0],
        run.request(ports["off"], "GET", "/metrics")[0],
    )
    shown = "on 200, off 404" if metrics == (200, 404) else f"DIFFERENT: {metrics}"
    return {"GET one": same, "/metrics": shown}


def summarize(
    op: run.Op, connections: int, runs: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    results = {name: run.combine(r) for name, r in runs.items()}
    on, off = results["on"], results["off"]
    slices = [
        run._slice_rps(a) / run._slice_rps(b) if run._slice_rps(b) else 0.0
        for a, b in zip(runs["on"], runs["off"], strict=True)
    ]
    ratio = on.rps / off.rps if off.rps else 0.0
    errors = sum(r.non2xx + r.socket_errors for r in results.values())
    return {
        "op": op.key,
        "title": op.title,
        "connections": connections,
        "requests": {n: r.requests for n, r in results.items()},
        "rps": {n: r.rps for n, r in results.items()},
        "ratio": ratio,
        "slice_ratios": slices,
        "p50_ms": {n: r.p50_ms for n, r in results.items()},
        "p99_ms": {n: r.p99_ms for n, r in results.items()},
        "app_cpu_us": {n: r.app_cpu_us for n, r in results.items()},
        "cpu_ratio": on.app_cpu_us / off.app_cpu_us if off.app_cpu_us else 0.0,
        "errors": errors,
        "pass": ratio >= TARGET and errors == 0,
    }


def report(
    args: argparse.Namespace,
    info: dict[str, Any],
    checks: dict[str, str],
    rows: list[dict[str, Any]],
    costs: dict[str, float],
) -> None:
    table = (
        "| operation | conns | req/s on / off | **on/off** | on/off per slice pair "
        "| p50 ms on / off | p99 ms on / off | server CPU µs/req on / off | verdict |\n"
        "|---|---:|---:|---:|---|---:|---:|---:|---|\n"
    )
    for r in rows:
        verdict = ("PASS" if r["pass"] else "FAIL") + f" ≥{TARGET:.2f}" if r["op"] == "get" else "—"
        table += (
            f"| {r['title']} | {r['connections']} "
            f"| {r['rps']['on']:,.0f} / {r['rps']['off']:,.0f} | **{r['ratio']:.3f}** "
            f"| {', '.join(f'{x:.2f}' for x in r['slice_ratios'])} "
            f"| {r['p50_ms']['on']:.1f} / {r['p50_ms']['off']:.1f} "
            f"| {r['p99_ms']['on']:.1f} / {r['p99_ms']['off']:.1f} "
            f"| {r['app_cpu_us']['on']:,.0f} / {r['app_cpu_us']['off']:,.0f} | {verdict} |\n"
        )
    machine = (
        f"{info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python {info['python']}; "
        f"PostgreSQL {info['postgresql']}; {info['wrk']}; uvicorn workers {info['workers']}; "
        f"wrk threads {info['wrk_threads']}; per row and server {args.rounds} alternating slices "
        f"of {max(1, round(args.duration / args.rounds))} s; load average (1, 5, 15 min) before "
        f"{info['load_before']}, after {info['load_after']}."
    )
    text = (
        f"Machine: {machine}\n\nCheck before measuring: "
        + ", ".join(f"{k}: {v}" for k, v in checks.items())
        + f".\n\n{table}\nThe front layer's `Observer.answered` alone, CPU µs per answer (best of "
        "five runs of 100,000 in a fresh interpreter): "
        + ", ".join(f"metrics {k} {v:.2f}" for k, v in costs.items())
        + ".\n"
    )
    print()
    print(text)
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    out = run.RESULTS / "metrics_cost.json"
    payload = {
        "machine": info,
        "settings": vars(args),
        "checks": checks,
        "results": rows,
        "observer_cpu_us": costs,
    }
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    if not args.no_docs:
        if run.replace_marked(START, END, f"{START}\n{text}{END}"):
            print(f"updated {run.DOCS}")
        else:
            print(f"{run.DOCS} has no {START} block: not updated")


if __name__ == "__main__":
    sys.exit(main())
