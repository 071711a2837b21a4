"""`relay bench --scenario noisy-neighbour`: a quiet tenant's latency beside another tenant's slow backlog.

Tenant "noisy" gets one endpoint that answers correctly but slowly (`--slow-ms`, default
5 s) and a backlog of `--backlog` events (default 1,500). While the workers grind
through it, tenant "quiet" posts `--quiet-events` single events at `--quiet-rate` per
second to an endpoint that answers at once; the bench prints the quiet tenant's
end-to-end latency (p50/p95/p99) and the most requests the slow endpoint ever had in
flight at once (it must stay within its max_in_flight).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import aiohttp
import msgspec
import psycopg

from relay import __version__
from relay.bench.receiver import Stats, fetch_count
from relay.db.admin import server_version
from relay.db.tenants import create_tenant


async def _stats(session: aiohttp.ClientSession, receiver: str, name: str) -> Stats:
    async with session.get(f"{receiver}/stats/{name}") as response:
        return msgspec.json.decode(await response.read(), type=Stats)


async def _post(session: aiohttp.ClientSession, url: str, body: object, key: str, expect: int) -> dict:
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    async with session.post(url, data=msgspec.json.encode(body), headers=headers) as response:
        answer = await response.read()
        if response.status != expect:
            raise SystemExit(f"bench: {url} answered {response.status}: {answer[:300]!r}")
        return msgspec.json.decode(answer)


async def run_noisy_neighbour(args: argparse.Namespace, conninfo: str, procs, api: str, receiver: str) -> dict:
    """Run the scenario against already started processes; return the figures."""
    from relay.bench.run import _percentile, _wait_http, say

    with psycopg.connect(conninfo, autocommit=True) as conn:
        _, noisy_key = create_tenant(conn, "noisy")
        _, quiet_key = create_tenant(conn, "quiet")
        pg_version = server_version(conn)
    async with aiohttp.ClientSession() as session:
        await _wait_http(session, f"{api}/health")
        await _wait_http(session, f"{receiver}/stats")
        noisy = await _post(
            session,
            f"{api}/v1/endpoints",
            {"url": f"{receiver}/slow/{args.slow_ms}/noisy", "timeout_seconds": 30},
            noisy_key,
            201,
        )
        await _post(session, f"{api}/v1/endpoints", {"url": f"{receiver}/hook/quiet"}, quiet_key, 201)
        say(args, f"noisy tenant: a backlog of {args.backlog} events to an endpoint answering in {args.slow_ms} ms ...")
        for start in range(0, args.backlog, 500):
            events = [
                {"type": "bench.noisy", "payload": {"n": n}} for n in range(start, min(args.backlog, start + 500))
            ]
            await _post(session, f"{api}/v1/events/batch", {"events": events}, noisy_key, 202)
        deadline = time.monotonic() + 60
        while (await fetch_count(session, receiver, "noisy")).max_concurrent == 0:  # the backlog is being worked on
            if time.monotonic() > deadline:
                raise SystemExit("bench: the noisy endpoint received nothing within 60 s")
            await asyncio.sleep(0.1)
        say(args, f"quiet tenant: {args.quiet_events} single events at {args.quiet_rate}/s ...")
        started = time.monotonic()
        for n in range(args.quiet_events):
            await asyncio.sleep(max(0.0, started + n / args.quiet_rate - time.monotonic()))  # the send schedule
            await _post(session, f"{api}/v1/events", {"type": "bench.quiet", "payload": {"n": n}}, quiet_key, 202)
        deadline = time.monotonic() + 120
        while (quiet := await _stats(session, receiver, "quiet")).received < args.quiet_events:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        noisy_stats = await fetch_count(session, receiver, "noisy")
        # Stop the backlog: nobody needs to wait for it.
        await _post(session, f"{api}/v1/endpoints/{noisy['id']}/pause", {}, noisy_key, 200)
    latencies = quiet.latencies_ms
    return {
        "relay_version": __version__,
        "scenario": "noisy-neighbour",
        "noisy_backlog_events": args.backlog,
        "noisy_endpoint_answer_ms": args.slow_ms,
        "noisy_delivered_meanwhile": noisy_stats.received,
        "noisy_max_concurrent_requests": noisy_stats.max_concurrent,
        "quiet_events": args.quiet_events,
        "quiet_received": quiet.received,
        "quiet_e2e_p50_ms": round(_percentile(latencies, 0.50), 1),
        "quiet_e2e_p95_ms": round(_percentile(latencies, 0.95), 1),
        "quiet_e2e_p99_ms": round(_percentile(latencies, 0.99), 1),
        "quiet_e2e_max_ms": round(max(latencies, default=float("nan")), 1),
        "worker_processes": args.workers,
        "postgresql": pg_version,
        "python": sys.version.split()[0],
    }
