"""A `relay worker` whose claim loop or recorder crashes exits non-zero, says which task and why, and loses nothing."""

from __future__ import annotations

import json
import sys

import httpx

from relay.bench.processes import ChildProcess
from tests.acceptance.conftest import Stack
from tests.acceptance.helpers import add_endpoint, deliveries_of, send_event, wait_for_states
from tests.receiver import Receiver
from tests.support import REPO, wait_until

WORKERS = 0  # each test starts a worker with a fault injected (and, if it needs one, a healthy worker after it)
STACK_ENV = {"RELAY_LEASE_MARGIN": "0.5s"}
TIMEOUT = 1.0  # the endpoint's timeout_seconds: with the margin, a lease of 1.5 s

# `relay worker` with one function of the dispatcher replaced, set up by the test alone: Relay has no test hook.
_RUN_WORKER = "import sys\nfrom relay.cli import main\nmain(sys.argv[1:])\n"
CRASH_CLAIMS = """
from relay.delivery.dispatcher import Dispatcher

async def claim(self, limit):
    raise RuntimeError("injected claim failure")

Dispatcher._claim = claim
"""
CRASH_RECORDING = """
import os
from relay.delivery import dispatcher

real_write = dispatcher.write_outcomes

async def write_outcomes(conn, batch, *args, **kwargs):
    if any(outcome.claim.endpoint_id == os.environ["CRASH_ON_ENDPOINT"] for outcome in batch):
        raise RuntimeError("injected recorder failure")
    await real_write(conn, batch, *args, **kwargs)

dispatcher.write_outcomes = write_outcomes
"""


def faulty_worker(stack: Stack, fault: str, name: str, **env: str) -> ChildProcess:
    command = [sys.executable, "-c", fault + _RUN_WORKER, "worker", "--concurrency", "8"]
    return ChildProcess(command, {**stack.env, **env}, stack.logs / f"{name}.log", cwd=REPO)


def exit_code(worker: ChildProcess, timeout: float = 30) -> int:
    """Wait for the worker to exit by itself; return its exit code."""
    wait_until(lambda: worker.proc.poll() is not None, timeout=timeout, what=f"the worker to exit:\n{worker.output()}")
    return worker.proc.returncode


def log_lines(worker: ChildProcess) -> list[dict]:
    """The worker's JSON log lines (the interpreter's own traceback of the uncaught error is not JSON)."""
    lines = []
    for line in worker.output().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def assert_failure_logged(worker: ChildProcess, task: str, error: str) -> None:
    lines = log_lines(worker)
    failed = [line for line in lines if line.get("event") == "worker.task_failed"]
    assert [(line["task"], line["level"]) for line in failed] == [(task, "error")], worker.output()
    assert "Traceback" in failed[0]["exception"] and error in failed[0]["exception"], failed[0]
    assert any(line.get("event") == "worker.stopped" for line in lines), worker.output()


def test_a_worker_whose_claim_loop_crashes_exits_non_zero_and_names_the_task(stack: Stack) -> None:
    worker = faulty_worker(stack, CRASH_CLAIMS, "crashing-claims")
    try:
        code = exit_code(worker)
    finally:
        worker.stop()
    assert code == 1, worker.output()
    assert_failure_logged(worker, "relay-claim", "RuntimeError: injected claim failure")


def test_a_worker_whose_recorder_crashes_exits_non_zero_and_its_delivery_comes_back_with_the_lease(
    stack: Stack, client: httpx.Client
) -> None:
    with Receiver() as receiver:
        endpoint = add_endpoint(client, receiver.url(), timeout_seconds=TIMEOUT)
        worker = faulty_worker(stack, CRASH_RECORDING, "crashing-recorder", CRASH_ON_ENDPOINT=endpoint["id"])
        try:
            event = send_event(client)
            code = exit_code(worker)
        finally:
            worker.stop()
        assert code == 1, worker.output()
        assert_failure_logged(worker, "relay-record", "RuntimeError: injected recorder failure")
        assert len(receiver.received()) == 1
        assert [d["status"] for d in deliveries_of(client, event["id"])] == ["delivering"]  # its outcome was lost

        # A healthy worker (what the process manager would start) sends it again once its lease expires.
        stack.start_worker("healthy")
        [delivery] = wait_for_states(client, event["id"], ["succeeded"], timeout=15)
        assert len(receiver.received()) == 2
    # The crash cost the customer no retry: one attempt that counts, one lost.
    assert (delivery["attempts"], delivery.get("lost_attempts")) == (1, 1), delivery
