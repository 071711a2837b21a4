"""The ingest rate limit is shared by every API process (F24): two `relay api` processes, one count."""

from __future__ import annotations

import time

import httpx

from tests.acceptance.conftest import Stack
from tests.support import RelayProcess, free_port, wait_for_http


def test_two_api_processes_share_one_count(stack: Stack, client: httpx.Client) -> None:
    port = free_port()
    second = RelayProcess(["api", "--host", "127.0.0.1", "--port", str(port)], stack.env, stack.logs / "api-2.log")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", second)
        limit = 5
        for _ in range(10):  # until one run falls inside a single one-second window
            key = client.post("/v1/api-keys", json={"name": "shared", "rate_limit": limit}).json()["key"]
            headers = {"Authorization": f"Bearer {key}"}
            apis = [httpx.Client(base_url=stack.base_url, headers=headers), httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers)]
            started = time.time()
            answers = [apis[i % 2].post("/v1/events", json={"type": "a.b", "payload": {"i": i}}) for i in range(12)]
            ended = time.time()
            for api in apis:
                api.close()
            if int(started) == int(ended):
                break
        else:
            raise AssertionError("no run fitted inside one second")
        statuses = [a.status_code for a in answers]
        # Counted separately, each process would accept 5 (10 in all); shared, the pair accepts 5.
        assert statuses == [202] * limit + [429] * (12 - limit), statuses  # both processes refuse after the fifth
        assert all(a.headers["ratelimit-limit"] == str(limit) for a in answers)
        refused = [a for a in answers if a.status_code == 429]
        assert all(a.headers["retry-after"] == "1" and a.headers["ratelimit-remaining"] == "0" for a in refused)
    finally:
        second.stop()
