"""`GET /metrics`: Prometheus text format.

Delivery, ingest, queue and circuit figures are read from PostgreSQL at scrape time
(rollups, the ingest sequence, the queue itself), so every API process answers the same
and they stay correct with any number of API and worker processes. HTTP request metrics
are per API process (prometheus-client; its multiprocess mode when `relay api --workers N`
runs several processes), labelled by route.
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Request, Response, get, head
from litestar.di import NamedDependency
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from psycopg import AsyncConnection

from relay.db.rollups import BUCKETS_MS
from relay.db.sql import fetch_all, fetch_one

http_metrics = PrometheusConfig(app_name="relay", prefix="relay_http", group_path=True, exclude=["/metrics"])


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    label_text = ""
    if labels:
        label_text = "{" + ",".join(f'{key}="{val}"' for key, val in labels.items()) + "}"
    return f"{name}{label_text} {value:g}"


def render_database_metrics(row: dict[str, Any], endpoints: list[dict[str, Any]] | None = None) -> str:
    """Render the figures kept in PostgreSQL as Prometheus text."""
    lines = [
        "# HELP relay_events_ingested_total Events accepted, all time.",
        "# TYPE relay_events_ingested_total counter",
        _line("relay_events_ingested_total", row["events_ingested"]),
        "# HELP relay_deliveries_total Delivery attempts by outcome: succeeded, failed (will retry or died), dead.",
        "# TYPE relay_deliveries_total counter",
        _line("relay_deliveries_total", row["succeeded"], {"status": "succeeded"}),
        _line("relay_deliveries_total", row["failed_attempts"], {"status": "failed"}),
        _line("relay_deliveries_total", row["dead"], {"status": "dead"}),
        "# HELP relay_delivery_duration_seconds Duration of delivery attempts.",
        "# TYPE relay_delivery_duration_seconds histogram",
    ]
    buckets = list(row["buckets"] or []) + [0] * (len(BUCKETS_MS) + 1 - len(row["buckets"] or []))
    cumulative = 0
    for bound, count in zip(BUCKETS_MS, buckets, strict=False):
        cumulative += count
        lines.append(_line("relay_delivery_duration_seconds_bucket", cumulative, {"le": f"{bound / 1000:g}"}))
    lines += [
        _line("relay_delivery_duration_seconds_bucket", row["attempts"], {"le": "+Inf"}),
        _line("relay_delivery_duration_seconds_sum", row["duration_ms_sum"] / 1000),
        _line("relay_delivery_duration_seconds_count", row["attempts"]),
        "# HELP relay_queue_depth Deliveries due now and not yet sent.",
        "# TYPE relay_queue_depth gauge",
        _line("relay_queue_depth", row["queue_depth"]),
        "# HELP relay_queue_lag_seconds Age of the oldest due delivery (0 when none is waiting).",
        "# TYPE relay_queue_lag_seconds gauge",
        _line("relay_queue_lag_seconds", float(row["queue_lag_seconds"])),
        "# HELP relay_circuit_open Endpoints whose circuit breaker is open or half-open.",
        "# TYPE relay_circuit_open gauge",
        _line("relay_circuit_open", row["circuits_open"]),
        "# HELP relay_attempts_lost_total Attempts Relay lost (a worker died mid-attempt); not endpoint failures.",
        "# TYPE relay_attempts_lost_total counter",
        _line("relay_attempts_lost_total", row["lost_attempts"]),
        "# HELP relay_endpoint_concurrency Adaptive in-flight level of each endpoint (never above its limit).",
        "# TYPE relay_endpoint_concurrency gauge",
    ]
    for endpoint in endpoints or []:
        labels = {"tenant_id": endpoint["tenant_id"], "endpoint_id": endpoint["endpoint_id"]}
        lines.append(_line("relay_endpoint_concurrency", endpoint["level"], labels))
    lines += ["# HELP relay_endpoint_in_flight Attempts in flight to each endpoint, across all workers.",
              "# TYPE relay_endpoint_in_flight gauge"]
    for endpoint in endpoints or []:
        labels = {"tenant_id": endpoint["tenant_id"], "endpoint_id": endpoint["endpoint_id"]}
        lines.append(_line("relay_endpoint_in_flight", endpoint["in_flight"], labels))
    return "\n".join(lines) + "\n"


def _process_metrics() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


# Exactly the type prometheus_client's text says it is (Prometheus 3 is strict about it).
# Litestar appends "; charset=utf-8" to text types itself, so it is left off here.
PROMETHEUS_TEXT = CONTENT_TYPE_LATEST.removesuffix("; charset=utf-8")


@head("/metrics", operation_id="metricsHead", tags=["operations"], media_type=PROMETHEUS_TEXT)
async def metrics_head() -> None:
    """What GET /metrics would answer, without the body (for probes)."""


@get("/metrics", operation_id="metrics", tags=["operations"], media_type=PROMETHEUS_TEXT)
async def metrics(request: Request, conn: NamedDependency[AsyncConnection]) -> Response[bytes]:
    """Prometheus metrics: delivery figures from PostgreSQL, HTTP figures from this API process."""
    row = await fetch_one(conn, "metrics_totals", {})
    assert row is not None
    endpoints = await fetch_all(
        conn, "endpoint_concurrency", {"default_max_in_flight": request.app.state.settings.endpoint_max_in_flight}
    )
    body = render_database_metrics(row, endpoints).encode() + _process_metrics()
    return Response(body, media_type=PROMETHEUS_TEXT)
