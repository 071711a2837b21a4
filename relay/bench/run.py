"""Run the benchmark: real API and worker processes, a real receiver, a load generator; print figures."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import psycopg

from relay import __version__
from relay.bench.cpu import CpuMeter, reset_statements, top_statements
from relay.bench.paced import fixed_rate, soak
from relay.bench.processes import ChildProcess, free_port, relay_command
from relay.bench.receiver import Stats, fetch_count
from relay.db.admin import create_database, drop_database, server_version
from relay.db.migrate import migrate
from relay.db.tenants import create_tenant
from relay.runtime import run
from relay.settings import Settings

BENCH_DB = "relay_bench"


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _embedded_server(settings: Settings) -> str:
    from relay.embedded import embedded_url

    return embedded_url(settings.home)


def _bench_server(settings: Settings) -> str:
    return settings.database_url or _embedded_server(settings)


def _bench_database(server: str) -> str:
    """Return a URL to a freshly created, migrated bench database on `server`."""
    url = create_database(server, BENCH_DB, fresh=True)
    migrate(url)
    return url


class Processes:
    """The API, worker and receiver subprocesses of one bench run."""

    def __init__(self, conninfo: str, logs: Path, rate_limited: bool) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": conninfo,
            "RELAY_LOG_FORMAT": "json",
            "RELAY_LOG_LEVEL": "info",  # the logs the bench points to show what each process did
            "RELAY_ALLOWED_NETWORKS": "127.0.0.0/8",  # the bench's receiver is on loopback
        }
        if not rate_limited:
            self.env["RELAY_INGEST_RATE_LIMIT"] = "0"
        self.logs = logs
        self.procs: dict[str, ChildProcess] = {}

    def start(self, name: str, args: list[str]) -> None:
        self.procs[name] = ChildProcess(args, self.env, self.logs / f"{name}.log")

    def relay(self, name: str, *args: str) -> None:
        self.start(name, relay_command(*args))

    def stop(self, prefix: str = "") -> None:
        stopping = {name: proc for name, proc in self.procs.items() if name.startswith(prefix)}
        for proc in stopping.values():
            proc.terminate()  # all at once, then wait for each
        for name, proc in stopping.items():
            proc.stop()
            del self.procs[name]


async def _wait_http(session: aiohttp.ClientSession, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {url} did not come up in {timeout}s")
        await asyncio.sleep(0.1)


async def _ingest(session, url: str, bodies: list[bytes], concurrency: int, headers) -> tuple[float, list[float], int]:
    """POST every body with `concurrency` requests in flight; return (seconds, latencies ms, events accepted)."""
    latencies: list[float] = []
    accepted = 0
    queue = iter(bodies)

    async def one_lane() -> None:
        nonlocal accepted
        for body in queue:
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
                if response.status != 202:
                    raise SystemExit(f"bench: ingest answered {response.status}: {answer[:300]!r}")
            latencies.append((time.perf_counter() - started) * 1000)
            accepted += answer.count(b'"deliveries"')

    started = time.perf_counter()
    await asyncio.gather(*(one_lane() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, accepted


async def _receiver_stats(session, base: str) -> Stats:
    async with session.get(f"{base}/stats") as response:
        return msgspec.json.decode(await response.read(), type=Stats)


async def _wait_received(session, base: str, expected: int, timeout: float) -> Stats:
    """Poll the receiver's count until `expected` arrived (or `timeout`); then fetch its latencies once."""
    deadline = time.monotonic() + timeout
    while True:
        count = await fetch_count(session, base)
        if count.received >= expected or time.monotonic() > deadline:
            return await _receiver_stats(session, base)
        await asyncio.sleep(0.2)


async def _bench(args: argparse.Namespace, conninfo: str, procs: Processes) -> dict[str, Any]:
    api_port = args.port or free_port()
    receiver_port = free_port()
    api = f"http://127.0.0.1:{api_port}"
    receiver = f"http://127.0.0.1:{receiver_port}"
    procs.start("receiver", [sys.executable, "-m", "relay.bench.receiver", str(receiver_port)])
    procs.relay("api", "api", "--host", "127.0.0.1", "--port", str(api_port), "--workers", str(args.api_workers))

    def start_workers() -> None:
        for index in range(args.workers):
            procs.relay(f"worker-{index}", "worker")

    start_workers()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        _, api_key = create_tenant(conn, "bench")
        pg_version = server_version(conn)
    headers = {"Authorization": f"Bearer {api_key}", "content-type": "application/json"}
    filler = "x" * max(0, args.payload_bytes - 40)
    connector = aiohttp.TCPConnector(limit=max(args.concurrency, 8))
    async with aiohttp.ClientSession(connector=connector) as session:
        await _wait_http(session, f"{api}/health")
        await _wait_http(session, f"{receiver}/stats")
        if not args.no_rate_limit:
            # The limiter does all its work (a counter row per request) but never refuses.
            body = msgspec.json.encode({"name": "bench", "rate_limit": 1_000_000})
            async with session.post(f"{api}/v1/api-keys", data=body, headers=headers) as response:
                headers["Authorization"] = "Bearer " + msgspec.json.decode(await response.read())["key"]
        for index in range(args.fanout):
            body = msgspec.json.encode({"url": f"{receiver}/hook/{index}"})
            async with session.post(f"{api}/v1/endpoints", data=body, headers=headers) as response:
                if response.status != 201:
                    raise SystemExit(f"bench: endpoint creation answered {response.status}")

        if args.scenario == "backlog":
            from relay.bench.backlog import drain_with_probes, make_backlog

            procs.stop("worker-")
            say(args, f"backlog: batch-ingesting {args.backlog_events} events with the workers stopped ...")
            made = await make_backlog(session, api, headers, args.backlog_events, filler)
            say(args, f"draining {made * args.fanout} deliveries while probing the API ...")
            drained = await drain_with_probes(args, session, api, receiver, headers, made * args.fanout,
                                              start_workers)
            return {**drained, "worker_processes": args.workers, "cores": os.cpu_count(), "postgresql": pg_version}

        meter = CpuMeter(conninfo, BENCH_DB, {
            "api": [procs.procs["api"].proc.pid],
            "worker": [p.proc.pid for name, p in procs.procs.items() if name.startswith("worker-")],
            # The measuring apparatus shares the machine: counted apart from Relay's total.
            "receiver": [procs.procs["receiver"].proc.pid],
        }, alone={"load_generator": [os.getpid()]})
        if args.soak:
            say(args, f"soak: {args.soak_rate:g} events/s for {args.soak:g} s with delivery ...")
            meter.start()
            soaked = await soak(args, session, api, receiver, headers, filler, conninfo)
            cpu = meter.stop()
            sent = soaked["soak_events_answered"]
            return {**soaked, **_cpu_per_event(cpu, sent), "cores": os.cpu_count(), "postgresql": pg_version}

        # 1. Single-event requests, with the workers delivering at the same time.
        singles = [
            msgspec.json.encode({"type": "bench.single", "payload": {"n": i, "filler": filler}})
            for i in range(args.events)
        ]
        say(args, f"single-event ingest: {args.events} events, {args.concurrency} concurrent requests ...")
        reset_statements(conninfo)
        meter.start()
        single_s, single_lat, _ = await _ingest(session, f"{api}/v1/events", singles, args.concurrency, headers)
        single_deliveries = args.events * args.fanout
        stats = await _wait_received(session, receiver, single_deliveries, timeout=120)
        single_cpu = _cpu_per_event(meter.stop(), args.events)
        statements = top_statements(conninfo)
        e2e = stats.latencies_ms
        live_rate = stats.received / (stats.last_at - stats.first_at) if stats.last_at and stats.first_at else 0.0

        paced: dict[str, Any] = {}
        if args.rate:
            say(args, f"fixed-rate ingest: {args.rate:g} events/s for {args.rate_seconds:g} s ...")
            paced = await fixed_rate(args, session, api, headers, filler)
            await _wait_received(session, receiver, (args.events + int(args.rate * args.rate_seconds)) * args.fanout,
                                 timeout=120)

        # 2. Batch requests with the workers stopped: a clean ingest figure, and a backlog to drain.
        procs.stop("worker-")
        async with session.post(f"{receiver}/reset"):
            pass
        batch_count = max(1, args.batch_events // args.batch_size)
        batches = [
            msgspec.json.encode(
                {
                    "events": [
                        {"type": "bench.batch", "payload": {"n": b * args.batch_size + i, "filler": filler}}
                        for i in range(args.batch_size)
                    ]
                }
            )
            for b in range(batch_count)
        ]
        say(args, f"batch ingest: {batch_count} x {args.batch_size} events ...")
        batch_s, batch_lat, batch_events = await _ingest(
            session, f"{api}/v1/events/batch", batches, min(4, args.concurrency), headers
        )

        # 3. Drain the backlog end to end.
        backlog = batch_events * args.fanout
        say(args, f"draining a backlog of {backlog} deliveries with {args.workers} worker(s) ...")
        drain_started = time.time()
        start_workers()
        meter.components["worker"] = [p.proc.pid for name, p in procs.procs.items() if name.startswith("worker-")]
        meter.start()
        stats = await _wait_received(session, receiver, backlog, timeout=300)
        drain_s = (stats.last_at or time.time()) - drain_started
        drain_cpu = meter.stop()

    return {
        "relay_version": __version__,
        "ingest_single_events": args.events,
        "ingest_single_events_per_s": round(args.events / single_s, 1),
        "ingest_single_p50_ms": round(_percentile(single_lat, 0.50), 2),
        "ingest_single_p95_ms": round(_percentile(single_lat, 0.95), 2),
        "ingest_single_p99_ms": round(_percentile(single_lat, 0.99), 2),
        "ingest_batch_events": batch_events,
        "ingest_batch_size": args.batch_size,
        "ingest_batch_events_per_s": round(batch_events / batch_s, 1),
        "ingest_batch_request_p95_ms": round(_percentile(batch_lat, 0.95), 2),
        "delivery_live_per_s": round(live_rate, 1),
        "delivery_e2e_p50_ms": round(_percentile(e2e, 0.50), 1),
        "delivery_e2e_p95_ms": round(_percentile(e2e, 0.95), 1),
        "drain_deliveries": stats.received,
        "drain_expected": backlog,
        "drain_deliveries_per_s": round(stats.received / drain_s, 1) if drain_s > 0 else 0.0,
        **paced,
        **{f"single_{key}": value for key, value in single_cpu.items()},
        "drain_cpu_ms_per_delivery": {name: round(1000 * seconds / max(1, stats.received), 3)
                                      for name, seconds in drain_cpu.items()},
        "top_statements": statements if statements is not None else "pg_stat_statements is not loaded on this server",
        "rate_limiter": "off" if args.no_rate_limit else "on",
        "fanout": args.fanout,
        "concurrency": args.concurrency,
        "api_processes": args.api_workers,
        "worker_processes": args.workers,
        "cores": os.cpu_count(),
        "postgresql": pg_version,
        "python": platform.python_version(),
    }


async def _noisy(args: argparse.Namespace, conninfo: str, procs: Processes) -> dict[str, Any]:
    from relay.bench.noisy import run_noisy_neighbour

    api_port, receiver_port = args.port or free_port(), free_port()
    procs.env["RELAY_INGEST_RATE_LIMIT"] = "0"  # the backlog goes in as fast as it can
    procs.start("receiver", [sys.executable, "-m", "relay.bench.receiver", str(receiver_port)])
    procs.relay("api", "api", "--host", "127.0.0.1", "--port", str(api_port), "--workers", str(args.api_workers))
    for index in range(args.workers):
        procs.relay(f"worker-{index}", "worker")
    return await run_noisy_neighbour(
        args, conninfo, procs, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{receiver_port}"
    )


RELAY_COMPONENTS = ("api", "worker", "postgresql")


def _cpu_per_event(cpu: dict[str, float], events: float) -> dict[str, Any]:
    """CPU milliseconds per event for each of Relay's components and in total; then what the bench's own
    load generator and receiver spent, and the most events/s the machine's cores could take at that cost."""
    per_event = {name: round(1000 * seconds / max(1.0, events), 3) for name, seconds in cpu.items()}
    relay = {name: per_event.get(name, 0.0) for name in RELAY_COMPONENTS}
    tools = {name: value for name, value in per_event.items() if name not in RELAY_COMPONENTS}
    machine = sum(per_event.values())
    result: dict[str, Any] = {"cpu_ms_per_event": {**relay, "total": round(sum(relay.values()), 3)}}
    if tools:
        result["bench_tools_cpu_ms_per_event"] = tools
        result["machine_cpu_ms_per_event"] = round(machine, 3)
        result["machine_ceiling_events_per_s"] = round(1000 * (os.cpu_count() or 1) / machine) if machine else 0
    return result


def say(args: argparse.Namespace, text: str) -> None:
    if not args.json:
        print(text, file=sys.stderr, flush=True)


def _end_on_sigterm() -> None:
    """End the bench on SIGTERM as on Ctrl-C: through the `finally` blocks that stop every process it
    started and drop its database. Left to the default action, a `timeout relay bench …`, a CI runner
    or a `kill` ended the bench alone and left its API, worker and receiver running."""

    def handler(signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Run the whole benchmark and print the result block; return the exit code."""
    _end_on_sigterm()
    if args.stats:
        from relay.bench.stats import run_stats_bench

        server = settings.database_url or _embedded_server(settings)
        run_stats_bench(settings, server)
        return 0
    if args.scenario == "dashboard":
        from relay.bench.dashboard import DATABASE, run_dashboard_bench

        server = settings.database_url or _embedded_server(settings)
        try:
            run_dashboard_bench(settings, server)
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # cleaning up already: a SIGTERM now must not cut it short
            if not args.keep:
                drop_database(server, DATABASE)
        return 0
    say(args, "preparing a fresh bench database ...")
    server = _bench_server(settings)
    conninfo = _bench_database(server)
    logs = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    procs = Processes(conninfo, logs, rate_limited=not args.no_rate_limit)
    try:
        if args.scenario == "noisy-neighbour":
            result = run(_noisy(args, conninfo, procs))
        else:
            result = run(_bench(args, conninfo, procs))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # cleaning up already: a SIGTERM now must not cut it short
        procs.stop()
        if not args.keep:
            drop_database(server, BENCH_DB)
    if not args.json:
        print("\n--- relay bench result ---")
        width = max(len(key) for key in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
        print(f"(process logs: {logs}" + (f"; database {BENCH_DB} kept)" if args.keep else ")"))
    print("RESULT " + msgspec.json.encode(result).decode())
    if args.scenario == "noisy-neighbour":
        return 0 if result["quiet_received"] >= result["quiet_events"] else 1
    if args.soak:
        return 0 if not result["soak_errors"] else 1
    if args.scenario == "backlog":
        return 0 if result["backlog_received"] >= result["backlog_deliveries"] else 1
    return 0 if result["drain_deliveries"] >= result["drain_expected"] else 1
