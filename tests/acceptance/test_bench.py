"""`relay bench` runs end to end and prints its parseable result (figures are not asserted)."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg

from relay.bench.processes import free_port
from relay.db.admin import database_url
from tests.support import REPO, relay_env, wait_until


def bench_database_exists(conninfo: str) -> bool:
    with psycopg.connect(database_url(conninfo, "postgres"), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = 'relay_bench'").fetchone() is not None


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
    # Relay's own CPU per event, and apart from it what the bench's load generator and receiver
    # spent: the machine's total bounds the single-event figure.
    relay_cpu, tools = figures["single_cpu_ms_per_event"], figures["single_bench_tools_cpu_ms_per_event"]
    assert set(relay_cpu) == {"api", "worker", "postgresql", "total"} and relay_cpu["total"] > 0
    assert set(tools) == {"receiver", "load_generator"} and all(v > 0 for v in tools.values())
    machine = figures["single_machine_cpu_ms_per_event"]
    assert abs(machine - relay_cpu["total"] - sum(tools.values())) < 0.01
    assert figures["single_machine_ceiling_events_per_s"] == round(1000 * figures["cores"] / machine)


def test_noisy_neighbour_scenario_prints_the_quiet_tenants_latency_and_cleans_up(conninfo: str) -> None:
    env = relay_env(conninfo)
    result = subprocess.run(
        [sys.executable, "-m", "relay", "bench", "--scenario", "noisy-neighbour", "--backlog", "100",
         "--slow-ms", "1000", "--quiet-events", "10", "--quiet-rate", "20"],
        env=env, capture_output=True, text=True, cwd=REPO, timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    figures = json.loads(line.removeprefix("RESULT "))
    assert figures["scenario"] == "noisy-neighbour" and figures["quiet_received"] == figures["quiet_events"] == 10
    assert 1 <= figures["noisy_max_concurrent_requests"] <= 64  # never the worker's whole concurrency (256)
    for key in ("quiet_e2e_p50_ms", "quiet_e2e_p95_ms", "quiet_e2e_p99_ms"):
        assert 0 < figures[key] < 60_000, key
    # The database it made is gone, and the logs it names hold what the processes printed.
    assert not bench_database_exists(conninfo)
    logs = Path(re.search(r"\(process logs: ([^;)]+)", result.stdout).group(1))
    assert (logs / "worker-0.log").read_text().strip(), "the worker's log is empty"
    assert (logs / "api.log").read_text().strip(), "the API's log is empty"


def test_soak_prints_a_line_per_interval_with_sizes_cpu_and_server_activity(conninfo: str) -> None:
    env = relay_env(conninfo)
    result = subprocess.run(
        [sys.executable, "-m", "relay", "bench", "--soak", "6", "--soak-every", "2", "--soak-rate", "50"],
        env=env, capture_output=True, text=True, cwd=REPO, timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    figures = json.loads(line.removeprefix("RESULT "))
    assert figures["soak_errors"] == 0 and figures["soak_events_answered"] == 300
    rows = figures["soak_minutes"]
    assert len(rows) == 3, rows
    ends = [row["end_s"] for row in rows]  # seconds since the soak started, not minutes: every 2 s here
    assert ends == sorted(set(ends)) and 1 <= ends[0] <= 4 and ends[-1] >= 5, ends
    for row in rows:
        assert 20 <= row["ingest_per_s"] <= 80, row  # 50/s paced, measured over a 2 s window
        assert row["ingest_p95_ms"] > 0 and row["deliveries_mb"][1] > 0  # its indexes: 0.1 MB and more
        assert 0 < row["cpu_busy_pct"] <= 100 and row["checkpoints"] >= 0 and row["deliveries_autovacuums"] >= 0
    assert sum(row["delivered_per_s"] for row in rows) > 0
    assert "cpu_busy_%" in result.stdout and "checkpoints" in result.stdout and "at_s" in result.stdout
    assert figures["cpu_ms_per_event"]["total"] > 0
    assert not bench_database_exists(conninfo)


def children_of(pid: int) -> set[int]:
    """The pids whose parent is `pid`, read from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # it ended meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_terminated_bench_stops_every_process_it_started_and_drops_its_database(conninfo: str) -> None:
    # `timeout relay bench …`, a CI runner giving up, `kill`: SIGTERM, not Ctrl-C. The bench must go the
    # way Ctrl-C goes — its API, worker and receiver stopped, its database dropped — not leave them running.
    proc = subprocess.Popen(
        [sys.executable, "-m", "relay", "bench", "--scenario", "backlog", "--backlog-events", "20000",
         "--drain-timeout", "600"],
        env=relay_env(conninfo), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    children: set[int] = set()
    try:
        deadline, said = time.monotonic() + 180, []
        while not any(line.startswith("draining") for line in said):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(said)
            try:
                said.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        # Draining: the receiver, the API and the worker run, children of the bench.
        def three_children() -> set[int] | None:
            found = children_of(proc.pid)
            return found if len(found) >= 3 else None

        children = wait_until(three_children, timeout=30, what="the bench's receiver, API and worker")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
        assert [pid for pid in children if alive(pid)] == []
        assert not bench_database_exists(conninfo)
    finally:
        proc.kill()
        proc.wait()
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_bench_receiver_counts_without_the_latencies_for_polling() -> None:
    # The bench polls how many deliveries arrived several times a second through a drain of up to
    # 1,000,000: the count must not carry every latency (it did: ~18 MB of JSON per poll at the end).
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-m", "relay.bench.receiver", str(port)], cwd=REPO)
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{base}/count").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=30, what="the bench receiver")
        for name in ("a", "a", "b"):
            sent = httpx.post(f"{base}/hook/{name}", json={"timestamp": "2026-11-29T10:00:00+00:00"})
            assert sent.status_code == 204
        stats, count = httpx.get(f"{base}/stats").json(), httpx.get(f"{base}/count").json()
        assert len(stats["latencies_ms"]) == stats["received"] == count["received"] == 3
        assert "latencies_ms" not in count
        assert count["first_at"] == stats["first_at"] and count["last_at"] == stats["last_at"]
        assert httpx.get(f"{base}/count/a").json()["received"] == 2
        assert httpx.get(f"{base}/count/b").json()["received"] == 1
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
