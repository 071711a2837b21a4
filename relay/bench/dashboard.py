"""`relay bench --scenario dashboard`: time every dashboard page on a database with 100,000 deliveries."""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
import time

import psycopg
from litestar.testing import TestClient

from relay.api.app import create_app
from relay.db.admin import create_database
from relay.db.migrate import migrate
from relay.settings import Settings

DATABASE = "relay_bench_dashboard"
EMAIL, PASSWORD = "bench@example.com", "bench password 123"
ROUNDS = 40

# One tenant with 20 endpoints; 100,000 events and deliveries (a tenth dead) and 150,000
# attempts over the last 24 hours, with the rollups the workers would have written.
_LOAD = [
    """INSERT INTO relay.endpoints (id, tenant_id, url, secret)
       SELECT 'ep_' || lpad(to_hex(g), 32, '0'), {t}, 'https://example.com/hooks/' || g, 'whsec_x'
       FROM generate_series(1, 20) g""",
    """INSERT INTO relay.events (id, tenant_id, type, body, created_at)
       SELECT id, {t}, 'order.paid',
              convert_to('{{"id":"' || id || '","type":"order.paid","timestamp":"'
                         || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                         || '","data":{{"order":' || g || ',"amount":4200}}}}', 'UTF8'), at
       FROM (SELECT g, 'evt_' || lpad(to_hex(g), 32, '0') AS id, now() - (g % 86400) * interval '1 second' AS at
             FROM generate_series(1, 100000) g) AS events""",
    """INSERT INTO relay.deliveries (id, tenant_id, event_id, endpoint_id, event_type, state, attempts,
                                    completed_at, created_at, dead_reason)
       SELECT 'dlv_' || lpad(to_hex(g), 32, '0'), {t}, 'evt_' || lpad(to_hex(g), 32, '0'),
              'ep_' || lpad(to_hex(1 + g % 20), 32, '0'), 'order.paid',
              CASE WHEN g % 10 = 0 THEN 'dead'::relay.delivery_state ELSE 'succeeded' END,
              CASE WHEN g % 10 = 0 THEN 3 ELSE 1 END, now(), now() - (g % 86400) * interval '1 second',
              CASE WHEN g % 10 = 0 THEN 'retries_exhausted' END
       FROM generate_series(1, 100000) g""",
    """INSERT INTO relay.attempts (id, tenant_id, delivery_id, event_id, endpoint_id, attempt_number, started_at,
                                   duration_ms, response_status, error_class, outcome)
       SELECT 'att_' || lpad(to_hex(g), 32, '0'), {t}, 'dlv_' || lpad(to_hex(1 + g % 100000), 32, '0'),
              'evt_' || lpad(to_hex(1 + g % 100000), 32, '0'),
              'ep_' || lpad(to_hex(1 + (1 + g % 100000) % 20), 32, '0'),
              1 + g / 100000, now() - (g % 86400) * interval '1 second', 20 + g % 300,
              CASE WHEN g % 4 = 0 THEN 500 ELSE 200 END, CASE WHEN g % 4 = 0 THEN 'server_error' END,
              CASE WHEN g % 4 = 0 THEN 'retrying'::relay.delivery_state ELSE 'succeeded' END
       FROM generate_series(0, 149999) g""",
    """INSERT INTO relay.delivery_rollups (tenant_id, endpoint_id, hour, attempts, succeeded, failed_attempts, dead,
                                          duration_ms_sum, latency_buckets)
       SELECT tenant_id, endpoint_id, date_trunc('hour', started_at), count(*),
              count(*) FILTER (WHERE error_class IS NULL), count(*) FILTER (WHERE error_class IS NOT NULL), 0,
              sum(duration_ms), ARRAY[0, count(*), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
       FROM relay.attempts GROUP BY 1, 2, 3""",
    "VACUUM ANALYZE",
]

PAGES = (
    ("overview", "/ui"),
    ("overview_live", "/ui/overview/live"),
    ("endpoints", "/ui/endpoints"),
    ("endpoint", "/ui/endpoints/ep_{one}"),
    ("events", "/ui/events"),
    ("event", "/ui/events/evt_{one}"),
    ("deliveries", "/ui/deliveries"),
    ("deliveries_dead_filter", "/ui/deliveries?state=dead"),
    ("delivery", "/ui/deliveries/dlv_{one}"),
    ("dead_letter", "/ui/dead-letter"),
    ("alerts", "/ui/alerts"),
    ("api_keys", "/ui/api-keys"),
)


def run_dashboard_bench(settings: Settings, server_url: str) -> dict[str, object]:
    """Build the dataset in a fresh database, sign in, and time each page ROUNDS times; return p50/p95 per page."""
    url = create_database(server_url, DATABASE, fresh=True)
    migrate(url)
    result: dict[str, object] = {"deliveries": 100_000, "events": 100_000, "attempts": 150_000}
    with TestClient(create_app(dataclasses.replace(settings, ingest_rate_limit=0), url)) as client:
        registered = client.post("/v1/auth/register", json={"email": EMAIL, "password": PASSWORD,
                                                            "tenant_name": "dashboard-bench"})
        if registered.status_code != 201:
            raise SystemExit(f"bench: register answered {registered.status_code}: {registered.text}")
        tenant = "'" + registered.json()["tenant_id"] + "'"
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in _LOAD:
                conn.execute(statement.format(t=tenant))
        result["load_seconds"] = round(time.perf_counter() - started, 1)
        form = client.get("/ui/login").text
        token = re.search(r'name="_csrf_token" value="([^"]+)"', form)
        assert token is not None, "the login page has no CSRF field"
        signed_in = client.post("/ui/login", data={"email": EMAIL, "password": PASSWORD, "next": "/ui",
                                                  "_csrf_token": token.group(1)}, follow_redirects=False)
        if signed_in.status_code != 303:
            raise SystemExit(f"bench: sign-in answered {signed_in.status_code}")
        one = "0" * 31 + "1"
        for name, path in PAGES:
            times = []
            for _ in range(ROUNDS):
                begun = time.perf_counter()
                response = client.get(path.format(one=one), follow_redirects=False)
                times.append((time.perf_counter() - begun) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"bench: {path} answered {response.status_code}")
            times.sort()
            result[f"{name}_p50_ms"] = round(statistics.median(times), 1)
            result[f"{name}_p95_ms"] = round(times[int(len(times) * 0.95) - 1], 1)
    print("\n--- relay bench: dashboard pages, 100,000 deliveries ---")
    for key, value in result.items():
        print(f"{key:<28} {value}")
    print("RESULT " + json.dumps(result))
    return result
