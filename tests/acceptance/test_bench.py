"""`relay bench` runs end to end and prints its parseable result (figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import REPO, relay_env


def test_bench_completes_and_prints_a_result_line(conninfo: str) -> None:
    env = relay_env(conninfo)
    result = subprocess.run(
        [sys.executable, "-m", "relay", "bench", "--events", "200", "--batch-events", "1000", "--batch-size", "250",
         "--fanout", "2", "--json"],
        env=env, capture_output=True, text=True, cwd=REPO, timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    figures = json.loads(line.removeprefix("RESULT "))
    assert figures["drain_deliveries"] == figures["drain_expected"] == 2000
    assert figures["ingest_single_events"] == 200 and figures["fanout"] == 2
    for key in ("ingest_single_events_per_s", "ingest_batch_events_per_s", "drain_deliveries_per_s", "delivery_e2e_p95_ms"):
        assert figures[key] > 0, key
