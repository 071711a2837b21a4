"""Open-loop load: single events at a fixed rate (latency at a given rate), and the long soak."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp
import msgspec
import psycopg

from relay.bench.receiver import Stats

MAX_IN_FLIGHT = 1000  # requests outstanding at once; beyond it the generator waits (and says so)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class PacedSender:
    """Sends one event every 1/rate seconds, whatever the answers' speed (an open loop, as real producers are)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, headers: dict[str, str], filler: str) -> None:
        self.session, self.url, self.headers, self.filler = session, url, headers, filler
        self.latencies: list[float] = []
        self.errors = 0
        self.behind = 0  # sends that started late because MAX_IN_FLIGHT requests were outstanding
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._n = 0

    async def _one(self) -> None:
        self._n += 1
        body = msgspec.json.encode({"type": "bench.paced", "payload": {"n": self._n, "filler": self.filler}})
        started = time.perf_counter()
        try:
            async with self.session.post(self.url, data=body, headers=self.headers) as response:
                await response.read()
                if response.status != 202:
                    self.errors += 1
                    return
        except aiohttp.ClientError:
            self.errors += 1
            return
        finally:
            self._slots.release()
        self.latencies.append((time.perf_counter() - started) * 1000)

    async def run(self, rate: float, seconds: float) -> float:
        """Send for `seconds` at `rate` events/s; return the achieved send rate."""
        tasks: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        total = int(rate * seconds)
        for index in range(total):
            due = started + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._slots.locked():
                self.behind += 1
            await self._slots.acquire()
            task = asyncio.create_task(self._one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        return total / (time.perf_counter() - started)


async def fixed_rate(args: argparse.Namespace, session: aiohttp.ClientSession, api: str,
                     headers: dict[str, str], filler: str) -> dict[str, Any]:
    """Single events at --rate for --rate-seconds: the ingest latency at that rate."""
    sender = PacedSender(session, f"{api}/v1/events", headers, filler)
    achieved = await sender.run(args.rate, args.rate_seconds)
    return {
        "paced_rate_target_per_s": args.rate,
        "paced_rate_achieved_per_s": round(achieved, 1),
        "paced_p50_ms": round(percentile(sender.latencies, 0.50), 2),
        "paced_p95_ms": round(percentile(sender.latencies, 0.95), 2),
        "paced_p99_ms": round(percentile(sender.latencies, 0.99), 2),
        "paced_errors": sender.errors,
        "paced_generator_behind": sender.behind,
    }


SIZES = """
SELECT c.relname,
       pg_relation_size(c.oid) AS heap, pg_indexes_size(c.oid) AS indexes,
       coalesce(s.n_live_tup, 0) AS live, coalesce(s.n_dead_tup, 0) AS dead
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE n.nspname = 'relay' AND c.relname IN ('deliveries', 'attempts', 'events')
ORDER BY c.relname
"""


# What else the server did in the minute: checkpoints (PostgreSQL 17 moved them to
# pg_stat_checkpointer) and autovacuum runs on the deliveries table.
CHECKPOINTS = {
    True: "SELECT num_timed + num_requested FROM pg_stat_checkpointer",
    False: "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter",
}
AUTOVACUUMS = (
    "SELECT coalesce(sum(autovacuum_count), 0) FROM pg_stat_user_tables"
    " WHERE schemaname = 'relay' AND relname = 'deliveries'"
)


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine since boot, from /proc/stat."""
    try:
        fields = [float(x) for x in open("/proc/stat").readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def server_counters(conn: psycopg.Connection) -> tuple[int, int]:
    """(checkpoints, autovacuums of relay.deliveries) so far."""
    newer = conn.info.server_version >= 170000
    row = conn.execute(CHECKPOINTS[newer]).fetchone()
    vacuums = conn.execute(AUTOVACUUMS).fetchone()
    return int(row[0]) if row else 0, int(vacuums[0]) if vacuums else 0


def _mb(n: int) -> str:
    return f"{n / 1_048_576:.1f}"


async def soak(args: argparse.Namespace, session: aiohttp.ClientSession, api: str, receiver: str,
               headers: dict[str, str], filler: str, conninfo: str) -> dict[str, Any]:
    """Sustained ingest at --soak-rate for --soak seconds with delivery; a line of figures every --soak-every."""
    sender = PacedSender(session, f"{api}/v1/events", headers, filler)
    async with session.post(f"{receiver}/window"):
        pass  # start the receiver's first window now
    sending = asyncio.create_task(sender.run(args.soak_rate, args.soak))
    minutes: list[dict[str, Any]] = []
    print("at_s  ingest/s  ingest_p95_ms  delivered/s  delivery_p95_ms  deliveries_MB(heap+idx)  "
          "attempts_MB(heap+idx)  dead_tuples(d/a)  cpu_busy_%  checkpoints  autovacuums", flush=True)
    soak_started = window_started = time.perf_counter()
    seen = 0
    busy_before = machine_busy()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        counters_before = server_counters(conn)
    minute = 0
    while not sending.done():
        await asyncio.wait({sending}, timeout=args.soak_every)
        minute += 1
        now = time.perf_counter()
        latencies = sender.latencies[seen:]
        seen = len(sender.latencies)
        async with session.post(f"{receiver}/window") as response:
            window = msgspec.json.decode(await response.read(), type=Stats)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            sizes = {row[0]: row[1:] for row in conn.execute(SIZES).fetchall()}
            counters = server_counters(conn)
        busy = machine_busy()
        cpu_busy = 100 * (busy[0] - busy_before[0]) / max(busy[1] - busy_before[1], 1.0)
        checkpoints, autovacuums = counters[0] - counters_before[0], counters[1] - counters_before[1]
        busy_before, counters_before = busy, counters
        elapsed = now - window_started
        window_started = now
        d, a = sizes.get("deliveries", (0, 0, 0, 0)), sizes.get("attempts", (0, 0, 0, 0))
        row = {
            "minute": minute,  # the interval's number (minutes with the default --soak-every 60)
            "end_s": round(now - soak_started),
            "ingest_per_s": round(len(latencies) / elapsed, 1),
            "ingest_p95_ms": round(percentile(latencies, 0.95), 1),
            "delivered_per_s": round(window.received / elapsed, 1),
            "delivery_p95_ms": round(percentile(window.latencies_ms, 0.95), 1),
            "deliveries_mb": [float(_mb(d[0])), float(_mb(d[1]))],
            "attempts_mb": [float(_mb(a[0])), float(_mb(a[1]))],
            "dead_tuples": [d[3], a[3]],
            "cpu_busy_pct": round(cpu_busy, 1),
            "checkpoints": checkpoints,
            "deliveries_autovacuums": autovacuums,
        }
        minutes.append(row)
        print(f"{row['end_s']:>4}  {row['ingest_per_s']:>8}  {row['ingest_p95_ms']:>13}  {row['delivered_per_s']:>11}  "
              f"{row['delivery_p95_ms']:>15}  {_mb(d[0]):>10}+{_mb(d[1]):<12}  {_mb(a[0]):>9}+{_mb(a[1]):<11}  "
              f"{d[3]}/{a[3]}  {row['cpu_busy_pct']:>10}  {checkpoints:>11}  {autovacuums:>11}", flush=True)
    await sending
    if sender.behind:
        ran = time.perf_counter() - soak_started
        print(f"the soak ran {ran:.0f} s, not {args.soak:g}: {sender.behind} sends started late because too many "
              f"requests were still unanswered (this machine could not take {args.soak_rate:g} events/s)", flush=True)
    full = [m for m in minutes if m["ingest_per_s"] > 0]
    steady = full[1:] or full  # the first minute includes the start-up

    def spread(key: str) -> float:
        values = [m[key] for m in steady]
        middle = sorted(values)[len(values) // 2] if values else 0
        return round(100 * max(abs(v - middle) for v in values) / middle, 1) if middle else 0.0

    return {
        "soak_seconds": args.soak,
        "soak_rate_target_per_s": args.soak_rate,
        "soak_errors": sender.errors,
        "soak_generator_behind": sender.behind,
        "soak_minutes": minutes,
        "soak_events_answered": len(sender.latencies),
        "soak_ingest_rate_spread_pct": spread("ingest_per_s"),
        "soak_ingest_p95_spread_pct": spread("ingest_p95_ms"),
        "soak_delivery_rate_spread_pct": spread("delivered_per_s"),
        "soak_delivery_p95_spread_pct": spread("delivery_p95_ms"),
    }
