"""Anomaly alerts: each endpoint's recent failure rate and latency against its own baseline."""

from __future__ import annotations

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from relay.db import operator
from relay.db.rollups import quantile_ms
from relay.db.sql import fetch_all, fetch_one
from relay.ids import new_id

MIN_ATTEMPTS = 5  # fewer recent attempts than this prove nothing either way
FAILURE_RATE_RISE = 0.3  # recent failure rate this much above the baseline's
LATENCY_FACTOR = 3.0  # recent p95 this many times the baseline's p95
LATENCY_FLOOR_MS = 500.0  # and at least this slow


async def scan(
    pool: AsyncConnectionPool, window_seconds: float = 900, history_seconds: float = 7 * 86400
) -> dict[str, int]:
    """Open, refresh or resolve alerts for every endpoint with recent traffic; return what changed."""
    changed = {"opened": 0, "resolved": 0}
    async with pool.connection() as conn:
        candidates = await fetch_all(conn, "endpoints_with_traffic", {"window": window_seconds})
    for row in candidates:
        scope = {
            "tenant_id": row["tenant_id"],
            "endpoint_id": row["endpoint_id"],
            "window": window_seconds,
            "history": history_seconds,
        }
        async with pool.connection() as conn, conn.transaction():
            recent = await fetch_one(conn, "window_figures", scope)
            baseline = await fetch_one(conn, "baseline_figures", scope)
            if not recent or not baseline:
                continue
            if recent["attempts"] < MIN_ATTEMPTS:
                if recent["failures"] == 0:  # nothing failing any more (or no traffic): nothing to alert on
                    for kind in ("failure_rate", "latency"):
                        if await fetch_one(conn, "resolve_alert", {**scope, "kind": kind}):
                            changed["resolved"] += 1
                continue
            rate = recent["failures"] / recent["attempts"]
            base_rate = baseline["failures"] / baseline["attempts"] if baseline["attempts"] else 0.0
            base_p95 = quantile_ms([int(b) for b in baseline["buckets"] or []], 0.95)
            checks = {
                "failure_rate": (
                    rate >= base_rate + FAILURE_RATE_RISE,
                    f"Failure rate {rate:.0%} over the last {window_seconds / 60:g} min "
                    f"against a baseline of {base_rate:.0%}.",
                    {
                        "recent_failure_rate": round(rate, 3),
                        "baseline_failure_rate": round(base_rate, 3),
                        "recent_attempts": recent["attempts"],
                        "baseline_attempts": baseline["attempts"],
                    },
                    "high" if rate >= 0.9 else "medium",
                ),
                "latency": (
                    base_p95 is not None
                    and recent["p95_ms"] is not None
                    and recent["p95_ms"] >= max(LATENCY_FLOOR_MS, LATENCY_FACTOR * base_p95),
                    f"p95 latency {recent['p95_ms'] or 0:.0f} ms over the last {window_seconds / 60:g} min "
                    f"against a baseline of {base_p95 or 0:.0f} ms.",
                    {"recent_p95_ms": recent["p95_ms"], "baseline_p95_ms": base_p95},
                    "medium",
                ),
            }
            for kind, (firing, summary, evidence, severity) in checks.items():
                if firing:
                    alert = await fetch_one(
                        conn,
                        "open_alert",
                        {
                            "id": new_id("alr"),
                            **scope,
                            "kind": kind,
                            "severity": severity,
                            "summary": summary,
                            "evidence": Jsonb(evidence),
                        },
                    )
                    if alert and alert["created"]:
                        changed["opened"] += 1
                        await operator.emit(
                            conn,
                            operator.ALERT_CREATED,
                            [
                                {
                                    "tenant_id": row["tenant_id"],
                                    "endpoint_id": row["endpoint_id"],
                                    "alert_id": alert["id"],
                                    "kind": kind,
                                    "summary": summary,
                                    "evidence": evidence,
                                }
                            ],
                        )
                elif await fetch_one(conn, "resolve_alert", {**scope, "kind": kind}):
                    changed["resolved"] += 1
    return changed
