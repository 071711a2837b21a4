"""Operator commands that look into the queues: `relay jobs` (procrastinate's) and `relay queue` (deliveries')."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import psycopg
from psycopg.rows import dict_row

from relay.db.sql import queries

HELD_REASONS = ("pause", "fifo", "circuit", "disabled")
COUNTS = ("due", "scheduled", "in_flight", "retrying", *(f"held_{reason}" for reason in HELD_REASONS))


def run_jobs_cli(conninfo: str, procrastinate_args: list[str]) -> int:
    """Run procrastinate's CLI on Relay's app and database; return its exit status."""
    from procrastinate import cli

    from relay.jobs import use_database

    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            migrated = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
    except psycopg.OperationalError as exc:
        raise SystemExit(f"relay jobs: cannot reach the database: {exc}") from None
    if not (migrated and migrated[0]):
        raise SystemExit("relay jobs: this database has no job tables yet; run `relay migrate`")
    use_database(conninfo)  # the same module object `--app=relay.jobs.app` loads, now on Relay's database
    args = ["--app=relay.jobs.app", *procrastinate_args] if procrastinate_args else ["--help"]
    try:
        asyncio.run(cli.cli(args))
    except SystemExit as stop:  # argparse's --help and usage errors, and procrastinate's own failures
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return 0


def queue_snapshot(conninfo: str, tenant_id: str | None = None, endpoint_id: str | None = None) -> dict[str, Any]:
    """Return the open deliveries per endpoint and in total, as `relay queue --json` prints them."""
    with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row) as conn:
        rows = conn.execute(
            queries["queue_by_endpoint"], {"tenant_id": tenant_id, "endpoint_id": endpoint_id}
        ).fetchall()
    endpoints = [
        {
            "tenant_id": row["tenant_id"],
            "tenant_name": row["tenant_name"],
            "endpoint_id": row["endpoint_id"],
            "url": row["url"],
            **_counts(row),
            "oldest_due_seconds": round(row["oldest_due_seconds"], 3),
        }
        for row in rows
    ]
    total: dict[str, Any] = {
        name: sum(endpoint[name] for endpoint in endpoints) for name in ("due", "scheduled", "in_flight", "retrying")
    }
    total["held"] = {reason: sum(e["held"][reason] for e in endpoints) for reason in HELD_REASONS}
    total["held"]["total"] = sum(total["held"][reason] for reason in HELD_REASONS)
    total["oldest_due_seconds"] = max((e["oldest_due_seconds"] for e in endpoints), default=0.0)
    return {"total": total, "endpoints": endpoints}


def _counts(row: dict[str, Any]) -> dict[str, Any]:
    held = {reason: row[f"held_{reason}"] for reason in HELD_REASONS}
    held["total"] = sum(held.values())
    return {
        "due": row["due"],
        "scheduled": row["scheduled"],
        "in_flight": row["in_flight"],
        "retrying": row["retrying"],
        "held": held,
    }


def format_age(seconds: float) -> str:
    """Say an age as people read it: 0s, 42s, 3m05s, 2h10m, 3d04h."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def format_queue(snapshot: dict[str, Any]) -> str:
    """Render a snapshot as a table: one line per endpoint, then the total."""
    header = ["TENANT", "ENDPOINT", "URL", "DUE", "IN FLIGHT", "RETRYING", "SCHEDULED",
              "HELD pause/fifo/circuit/disabled", "OLDEST DUE"]

    def line(tenant: str, endpoint: str, url: str, counts: dict[str, Any], oldest: float) -> list[str]:
        held = counts["held"]
        return [tenant, endpoint, url, str(counts["due"]), str(counts["in_flight"]), str(counts["retrying"]),
                str(counts["scheduled"]), "/".join(str(held[reason]) for reason in HELD_REASONS), format_age(oldest)]

    rows = [header]
    for endpoint in snapshot["endpoints"]:
        url = endpoint["url"] if len(endpoint["url"]) <= 48 else endpoint["url"][:47] + "…"
        rows.append(line(endpoint["tenant_name"], endpoint["endpoint_id"], url, endpoint,
                         endpoint["oldest_due_seconds"]))
    total = snapshot["total"]
    count = len(snapshot["endpoints"])
    rows.append(line("TOTAL", f"{count} endpoint{'' if count == 1 else 's'}", "", total, total["oldest_due_seconds"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = range(3, len(header))
    out = []
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        out.append("  ".join(cells).rstrip())
    if not snapshot["endpoints"]:
        out.insert(1, "(no open deliveries: nothing due, in flight, scheduled or held)")
    return "\n".join(out)


def print_queue(conninfo: str, *, as_json: bool, tenant_id: str | None, endpoint_id: str | None) -> None:
    snapshot = queue_snapshot(conninfo, tenant_id, endpoint_id)
    sys.stdout.write((json.dumps(snapshot, indent=2) if as_json else format_queue(snapshot)) + "\n")
