"""Supervise a worker's long-running tasks: restart a stateless one after a crash, stop the worker if another dies."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("relay.worker")


class WorkerFailed(RuntimeError):
    """A task the worker cannot run without has failed: the process must exit, non-zero, and be started again."""

    def __init__(self, task: str, error: BaseException) -> None:
        super().__init__(f"worker task {task} failed: {type(error).__name__}: {error}")
        self.task = task


def failure_of(task: asyncio.Task[None]) -> WorkerFailed | None:
    """Return the error that stops the worker if `task` ended by an exception (logged with its traceback), else None."""
    if not task.done():
        return None
    error = asyncio.CancelledError(f"{task.get_name()} was cancelled") if task.cancelled() else task.exception()
    if error is None:
        return None
    log.error(
        "worker.task_failed",
        task=task.get_name(),
        error=f"{type(error).__name__}: {error}",
        action="stopping the worker",
        exc_info=error,
    )
    failure = WorkerFailed(task.get_name(), error)
    failure.__cause__ = error  # an uncaught WorkerFailed prints the task's own traceback too
    return failure


async def keep_running(
    name: str,
    run: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    first_delay: float = 0.5,
    max_delay: float = 30.0,
) -> None:
    """Run `run()` until `stop` is set, starting it again after a growing pause whenever it fails or returns.

    Only for tasks that keep no state worth losing. Every restart is logged, with the
    traceback if it crashed, and counted; cancelling this coroutine cancels `run()`.
    """
    restarts = 0
    delay = first_delay
    while not stop.is_set():
        started = time.monotonic()
        error: Exception | None = None
        try:
            await run()
        except Exception as exc:  # noqa: BLE001 - any crash is logged and the task started again; cancelling is not
            error = exc
        if stop.is_set():
            if error is not None:
                log.warning("worker.task_failed_while_stopping", task=name, exc_info=error)
            return
        if time.monotonic() - started > max_delay:
            delay = first_delay  # it ran well for a while: a new failure, not a crash loop
        restarts += 1
        log.warning(
            "worker.task_restarting",
            task=name,
            restarts=restarts,
            retry_in=delay,
            reason="returned before the worker stopped" if error is None else f"{type(error).__name__}: {error}",
            exc_info=error,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)  # backoff, cut short by stop; not synchronisation
        delay = min(max_delay, delay * 2)
