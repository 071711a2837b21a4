"""A real HTTP receiver on 127.0.0.1 for delivery tests, scriptable per request."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from tests.threaded_server import ThreadedServer


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass(frozen=True)
class SlowBody:
    """Answer with headers at once, then the body a chunk at a time."""

    status: int
    chunks: int
    delay: float


# Answer by dropping the connection without a response.
RESET = "reset"

# A behaviour gets the request and answers (status, headers, body), RESET or a SlowBody;
# it may sleep to simulate a slow endpoint.
Behaviour = Callable[[Received], Awaitable[tuple[int, dict[str, str], bytes] | str | SlowBody]]


async def always_ok(_: Received) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, b"ok"


class Receiver(ThreadedServer):
    """A webhook receiver that records every request and answers as its behaviour says."""

    def __init__(self, behaviour: Behaviour = always_ok) -> None:
        super().__init__()
        self.behaviour = behaviour
        self.requests: list[Received] = []
        self._lock = threading.Lock()

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str | None = None) -> list[Received]:
        """Return a snapshot of the requests so far (only those to `path` if given)."""
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        item = Received(request.path, {k.lower(): v for k, v in request.headers.items()}, await request.read(), time.time())
        with self._lock:
            self.requests.append(item)
        answer = await self.behaviour(item)
        if answer == RESET:
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)  # never reaches the client
        if isinstance(answer, SlowBody):
            response = web.StreamResponse(status=answer.status)
            response.content_length = answer.chunks
            await response.prepare(request)
            for _ in range(answer.chunks):
                await asyncio.sleep(answer.delay)  # the slow endpoint itself, not test synchronisation
                await response.write(b"x")
            return response
        status, headers, body = answer
        return web.Response(status=status, headers=headers, body=body)


class InFlightGauge:
    """A behaviour: answer 200 after `seconds`, and record the most requests ever in flight at once.

    It runs on the receiver's one event loop, so the counts need no lock.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.in_flight = 0
        self.peak = 0

    async def __call__(self, _: Received) -> tuple[int, dict[str, str], bytes]:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.seconds)  # the slow endpoint itself, not test synchronisation
        finally:
            self.in_flight -= 1
        return 200, {}, b"ok"


class Holding:
    """Keep requests unanswered for up to `seconds` each, or until `release()`: an attempt still in flight.

    A behaviour awaits `hold()`; the test calls `release()` when it is done, so that the
    receiver can stop at once.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._released = threading.Event()

    async def hold(self) -> None:
        await asyncio.to_thread(self._released.wait, self.seconds)  # the slow endpoint itself

    def release(self) -> None:
        self._released.set()
