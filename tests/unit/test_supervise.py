"""Supervision helpers: a stateless task starts again after a crash; an essential task's crash stops the worker."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from relay.supervise import WorkerFailed, failure_of, keep_running


def test_a_crashed_task_is_logged_with_its_traceback_and_started_again_with_a_growing_pause() -> None:
    stop = asyncio.Event()
    runs = 0

    async def crash_twice_then_run() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise RuntimeError(f"crash {runs}")
        await stop.wait()

    async def scenario() -> None:
        task = asyncio.create_task(keep_running("relay-test", crash_twice_then_run, stop, first_delay=0.01))
        for _ in range(200):
            if runs == 3:
                break
            await asyncio.sleep(0.01)  # polling interval with a bound
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    with capture_logs() as logs:
        asyncio.run(scenario())
    restarts = [entry for entry in logs if entry["event"] == "worker.task_restarting"]
    assert [(r["task"], r["restarts"], r["retry_in"]) for r in restarts] == [
        ("relay-test", 1, 0.01), ("relay-test", 2, 0.02)
    ]
    assert [str(r["exc_info"]) for r in restarts] == ["crash 1", "crash 2"]
    assert all(isinstance(r["exc_info"], RuntimeError) and r["log_level"] == "warning" for r in restarts)


def test_a_task_that_returns_before_stop_is_started_again() -> None:
    stop = asyncio.Event()
    runs = 0

    async def return_at_once_then_stop() -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            stop.set()

    with capture_logs() as logs:
        asyncio.run(asyncio.wait_for(keep_running("relay-test", return_at_once_then_stop, stop, first_delay=0.01), 5))
    assert runs == 2
    [restart] = [entry for entry in logs if entry["event"] == "worker.task_restarting"]
    assert restart["reason"] == "returned before the worker stopped" and restart["exc_info"] is None


def test_cancelling_the_supervisor_cancels_the_task_and_is_not_a_restart() -> None:
    stop = asyncio.Event()
    started = asyncio.Event()
    cancelled = False

    async def run_forever() -> None:
        nonlocal cancelled
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled = True
            raise

    async def scenario() -> None:
        task = asyncio.create_task(keep_running("relay-test", run_forever, stop))
        await asyncio.wait_for(started.wait(), timeout=5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with capture_logs() as logs:
        asyncio.run(scenario())
    assert cancelled and not [entry for entry in logs if entry["event"] == "worker.task_restarting"]


def test_failure_of_logs_a_crashed_task_and_names_it_in_the_error() -> None:
    async def crash() -> None:
        raise ValueError("bad row")

    async def scenario() -> tuple[WorkerFailed | None, WorkerFailed | None]:
        crashed = asyncio.create_task(crash(), name="relay-record")
        fine = asyncio.create_task(asyncio.sleep(0), name="relay-claim")
        await asyncio.wait([crashed, fine])
        return failure_of(crashed), failure_of(fine)

    with capture_logs() as logs:
        failure, none = asyncio.run(scenario())
    assert none is None
    assert isinstance(failure, WorkerFailed) and failure.task == "relay-record"
    assert str(failure) == "worker task relay-record failed: ValueError: bad row"
    assert isinstance(failure.__cause__, ValueError)
    [entry] = logs
    assert (entry["event"], entry["task"], entry["log_level"]) == ("worker.task_failed", "relay-record", "error")
    assert isinstance(entry["exc_info"], ValueError) and entry["exc_info"].__traceback__ is not None
