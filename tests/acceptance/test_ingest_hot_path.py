"""The ingest hot path (issue 12): group commit never answers 202 for what is not committed, and a
revoked API key is refused by every API process within a second although keys are cached."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

from relay.db.admin import create_database
from relay.db.migrate import migrate
from relay.db.tenants import create_tenant
from tests.acceptance.test_faults import own_server  # noqa: F401  (fixture: a PostgreSQL this test may restart)
from tests.support import RelayProcess, free_port, relay_env, wait_for_http, wait_until


def test_a_database_restart_mid_flush_never_answers_202_for_an_uncommitted_event(
    own_server, tmp_path: Path  # noqa: F811
) -> None:
    admin_url, restart_postgres = own_server
    url = create_database(admin_url, "relay_group_commit", fresh=True)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        _, api_key = create_tenant(conn, "group-commit")
    port = free_port()
    api = RelayProcess(["api", "--host", "127.0.0.1", "--port", str(port)], relay_env(url), tmp_path / "api.log")
    answers: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/health", api)
        headers = {"Authorization": f"Bearer {api_key}"}

        def produce(lane: int) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=15) as http:
                n = 0
                while not stop.is_set():
                    key = f"lane{lane}-{n}"
                    n += 1
                    try:
                        response = http.post("/v1/events", json={"type": "a.b", "payload": {"key": key}},
                                             headers={"Idempotency-Key": key})
                        status = response.status_code
                    except httpx.HTTPError:
                        status = 0  # no answer at all
                    with lock:
                        answers[key] = status

        with ThreadPoolExecutor(16) as pool:
            lanes = [pool.submit(produce, lane) for lane in range(16)]
            wait_until(lambda: len(answers) > 300, timeout=60, what="events flowing")
            restart_postgres()
            wait_until(lambda: Counter(answers.values())[202] > 300 + 200, timeout=120, what="events after restart")
            stop.set()
            for lane in lanes:
                lane.result(timeout=60)
    finally:
        stop.set()
        api.stop()

    with psycopg.connect(url, autocommit=True) as conn:
        stored = {row[0] for row in conn.execute("SELECT idempotency_key FROM relay.events")}
    statuses = Counter(answers.values())
    accepted = {key for key, status in answers.items() if status == 202}
    refused = {key for key, status in answers.items() if status == 503}
    assert statuses[503] > 0, statuses  # the restart hit requests in flight …
    assert set(statuses) <= {202, 503}, statuses  # … which were told the database is away, nothing else
    assert accepted <= stored, f"answered 202 but not stored: {sorted(accepted - stored)[:5]}"
    assert not refused & stored, f"answered 503 but stored: {sorted(refused & stored)[:5]}"


def test_a_revoked_key_is_refused_by_every_api_process_within_a_second(conninfo: str, tmp_path: Path) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        _, admin_key = create_tenant(conn, f"revoke-{uuid.uuid4().hex[:6]}")
    env = relay_env(conninfo)
    ports = [free_port(), free_port()]
    apis = [RelayProcess(["api", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / f"api-{i}.log")
            for i, port in enumerate(ports)]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base, api in zip(bases, apis, strict=True):
            wait_for_http(f"{base}/health", api)
        created = httpx.post(f"{bases[0]}/v1/api-keys", json={"name": "to revoke"},
                             headers={"Authorization": f"Bearer {admin_key}"})
        assert created.status_code == 201, created.text
        key, key_id = created.json()["key"], created.json()["id"]
        doomed = {"Authorization": f"Bearer {key}"}
        for base in bases:  # both processes have now seen (and cached) the key
            for _ in range(3):
                assert httpx.post(f"{base}/v1/events", json={"type": "a.b", "payload": {}},
                                  headers=doomed).status_code == 202
        revoked = httpx.delete(f"{bases[1]}/v1/api-keys/{key_id}", headers={"Authorization": f"Bearer {admin_key}"})
        assert revoked.status_code == 204
        revoked_at = time.monotonic()
        refused_after: dict[str, float] = {}
        for base in bases:
            wait_until(lambda base=base: httpx.get(f"{base}/v1/endpoints", headers=doomed).status_code == 401,
                       timeout=5, interval=0.02, what=f"{base} refusing the revoked key")
            refused_after[base] = time.monotonic() - revoked_at
        assert max(refused_after.values()) < 1.0, refused_after
        for base in bases:
            answer = httpx.post(f"{base}/v1/events", json={"type": "a.b", "payload": {}}, headers=doomed)
            assert answer.status_code == 401, answer.text
    finally:
        for api in apis:
            api.stop()
