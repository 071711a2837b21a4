"""`relay bench --stats`: time the stats endpoints and /metrics on a database with 1,000,000 attempts."""

from __future__ import annotations

import dataclasses
import json
import statistics
import time

import psycopg
from litestar.testing import TestClient

from relay.api.app import create_app
from relay.db.admin import create_database
from relay.db.migrate import migrate
from relay.db.tenants import create_tenant
from relay.settings import Settings

DATABASE = "relay_bench_stats"

# One tenant, 20 endpoints, 500,000 events and deliveries and 1,000,000 attempts spread
# over the last 24 hours, and the rollups the workers would have written for them.
_LOAD = [
    """INSERT INTO relay.endpoints (id, tenant_id, url, secret)
       SELECT 'ep_' || lpad(to_hex(g), 32, '0'), {t}, 'https://example.com/' || g, 'whsec_x'
       FROM generate_series(1, 20) g""",
    """INSERT INTO relay.events (id, tenant_id, type, body, created_at)
       SELECT 'evt_' || lpad(to_hex(g), 32, '0'), {t}, 'a.b', '{{}}'::bytea, now() - (g % 86400) * interval '1 second'
       FROM generate_series(1, 500000) g""",
    """INSERT INTO relay.deliveries (id, tenant_id, event_id, endpoint_id, event_type, state, attempts,
                                    completed_at, created_at)
       SELECT 'dlv_' || lpad(to_hex(g), 32, '0'), {t}, 'evt_' || lpad(to_hex(g), 32, '0'),
              'ep_' || lpad(to_hex(1 + g % 20), 32, '0'), 'a.b',
              CASE WHEN g % 10 = 0 THEN 'dead'::relay.delivery_state ELSE 'succeeded' END, 2, now(),
              now() - (g % 86400) * interval '1 second'
       FROM generate_series(1, 500000) g""",
    """INSERT INTO relay.attempts (id, tenant_id, delivery_id, event_id, endpoint_id, attempt_number, started_at,
                                   duration_ms, response_status, error_class, outcome)
       SELECT 'att_' || lpad(to_hex(g), 32, '0'), {t}, 'dlv_' || lpad(to_hex(1 + g / 2), 32, '0'),
              'evt_' || lpad(to_hex(1 + g / 2), 32, '0'), 'ep_' || lpad(to_hex(1 + (1 + g / 2) % 20), 32, '0'),
              1 + g % 2, now() - (g % 86400) * interval '1 second', 20 + g % 300,
              CASE WHEN g % 4 = 0 THEN 500 ELSE 200 END, CASE WHEN g % 4 = 0 THEN 'server_error' END,
              CASE WHEN g % 4 = 0 THEN 'retrying'::relay.delivery_state ELSE 'succeeded' END
       FROM generate_series(0, 999999) g""",
    """INSERT INTO relay.delivery_rollups (tenant_id, endpoint_id, hour, attempts, succeeded, failed_attempts, dead,
                                          duration_ms_sum, latency_buckets)
       SELECT tenant_id, endpoint_id, date_trunc('hour', started_at), count(*),
              count(*) FILTER (WHERE error_class IS NULL),
              count(*) FILTER (WHERE error_class IS NOT NULL), 0, sum(duration_ms),
              ARRAY[0, count(*) FILTER (WHERE duration_ms <= 25),
                    count(*) FILTER (WHERE duration_ms > 25 AND duration_ms <= 50),
                    count(*) FILTER (WHERE duration_ms > 50 AND duration_ms <= 100),
                    count(*) FILTER (WHERE duration_ms > 100 AND duration_ms <= 250),
                    count(*) FILTER (WHERE duration_ms > 250), 0, 0, 0, 0, 0, 0, 0]
       FROM relay.attempts GROUP BY 1, 2, 3""",
    "VACUUM ANALYZE",
]


def run_stats_bench(settings: Settings, server_url: str) -> dict[str, object]:
    """Build the dataset in a fresh database and time each read 20 times; return the medians."""
    url = create_database(server_url, DATABASE, fresh=True)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        tenant_id, api_key = create_tenant(conn, "stats-bench")
        started = time.perf_counter()
        for statement in _LOAD:
            conn.execute(statement.format(t="'" + tenant_id + "'"))
        load_seconds = time.perf_counter() - started
    result: dict[str, object] = {
        "attempts": 1_000_000,
        "deliveries": 500_000,
        "events": 500_000,
        "load_seconds": round(load_seconds, 1),
    }
    headers = {"Authorization": f"Bearer {api_key}"}
    with TestClient(create_app(dataclasses.replace(settings, ingest_rate_limit=0), url)) as api:
        for name, path in (
            ("stats", "/v1/stats"),
            ("endpoint_stats", f"/v1/endpoints/ep_{'0' * 31}1/stats"),
            ("metrics", "/metrics"),
        ):
            times = []
            for _ in range(20):
                begun = time.perf_counter()
                response = api.get(path, headers=headers)
                times.append((time.perf_counter() - begun) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"bench: {path} answered {response.status_code}")
            result[f"{name}_median_ms"] = round(statistics.median(times), 1)
            result[f"{name}_max_ms"] = round(max(times), 1)
    print("RESULT " + json.dumps(result))
    return result
