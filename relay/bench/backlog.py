"""`relay bench --scenario backlog`: drain a large backlog while probing the API's latency.

The backlog is made with batch ingest while no worker runs; then the workers start, and a
probe sends a single event, lists deliveries and reads the stats a few times a second
until the backlog is gone. Prints the drain rate per tenth of the backlog (it must not fall
as the backlog grows) and the probe's p95 per request kind.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp
import msgspec

from relay.bench.paced import percentile
from relay.bench.receiver import fetch_count


async def make_backlog(session: aiohttp.ClientSession, api: str, headers: dict[str, str], total: int,
                       filler: str) -> int:
    """Batch-ingest `total` events (to every endpoint) with 4 requests in flight; return the events made."""
    batch = 1000
    bodies = [
        msgspec.json.encode({"events": [{"type": "bench.backlog", "payload": {"n": b * batch + i, "filler": filler}}
                                        for i in range(min(batch, total - b * batch))]})
        for b in range((total + batch - 1) // batch)
    ]
    made = 0
    queue = iter(bodies)

    async def lane() -> None:
        nonlocal made
        for body in queue:
            async with session.post(f"{api}/v1/events/batch", data=body, headers=headers) as response:
                answer = await response.read()
                if response.status != 202:
                    raise SystemExit(f"bench: batch ingest answered {response.status}: {answer[:200]!r}")
                made += answer.count(b'"deliveries"')

    await asyncio.gather(*(lane() for _ in range(4)))
    return made


async def drain_with_probes(args: argparse.Namespace, session: aiohttp.ClientSession, api: str, receiver: str,
                            headers: dict[str, str], expected: int, start_workers: Any) -> dict[str, Any]:
    """Start the workers, probe the API until `expected` deliveries arrived; return the figures."""
    probes: dict[str, list[float]] = {"ingest": [], "list": [], "stats": []}
    done = asyncio.Event()

    async def probe() -> None:
        n = 0
        while not done.is_set():
            for kind, method, path, body in (
                ("ingest", "POST", "/v1/events", msgspec.json.encode({"type": "bench.probe", "payload": {"n": n}})),
                ("list", "GET", "/v1/deliveries?limit=50", None),
                ("stats", "GET", "/v1/stats", None),
            ):
                started = time.perf_counter()
                async with session.request(method, f"{api}{path}", data=body, headers=headers) as response:
                    await response.read()
                probes[kind].append((time.perf_counter() - started) * 1000)
            n += 1
            await asyncio.sleep(0.2)

    tenths: list[float] = []
    started = time.perf_counter()
    start_workers()
    prober = asyncio.create_task(probe())
    next_mark, mark_started = expected // 10, started
    received = 0
    while received < expected:
        await asyncio.sleep(0.25)
        received = (await fetch_count(session, receiver)).received  # not /stats: no latencies wanted here
        while next_mark and received >= next_mark and len(tenths) < 10:
            now = time.perf_counter()
            tenths.append(round((expected // 10) / (now - mark_started), 1))
            mark_started, next_mark = now, next_mark + expected // 10
        if time.perf_counter() - started > args.drain_timeout:
            break
    done.set()
    await prober
    seconds = time.perf_counter() - started
    return {
        "backlog_deliveries": expected,
        "backlog_received": received,
        "backlog_drain_per_s": round(received / seconds, 1),
        "backlog_drain_per_s_by_tenth": tenths,
        **{f"probe_{kind}_p95_ms": round(percentile(values, 0.95), 1) for kind, values in probes.items()},
        "probe_requests": sum(len(v) for v in probes.values()),
    }
