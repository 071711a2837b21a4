"""The bench's webhook receiver: answers 204 (at once, or after a delay) and measures end-to-end latency.

Run as its own process (`python -m relay.bench.receiver PORT`) so it does not share an
event loop with the load generator. `POST /hook/{name}` answers at once;
`POST /slow/{ms}/{name}` answers after `ms` milliseconds (a slow but healthy endpoint).
`GET /stats` reports what it has seen in total, `GET /stats/{name}` for one name, with
every delivery's latency; `GET /count` and `GET /count/{name}` report the same without the
latencies, for polling: a million latencies are ~18 MB of JSON, and encoding them four times
a second stalled this receiver's loop (and the bench's) long enough to slow the very drain
being measured as it went on. `POST /window` reports what it has seen since the previous
`/window` call (the soak's minute-by-minute figures) and starts a new window.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
import msgspec
from aiohttp import web

from relay.runtime import has_uvloop


class _Envelope(msgspec.Struct):
    timestamp: str


class Stats(msgspec.Struct):
    """What the receiver has counted since the last reset."""

    received: int
    first_at: float | None
    last_at: float | None
    latencies_ms: list[float]
    max_concurrent: int = 0


class Count(msgspec.Struct):
    """What the receiver has counted since the last reset, without the latencies (cheap to poll)."""

    received: int
    first_at: float | None
    last_at: float | None
    max_concurrent: int = 0


@dataclass
class _Counter:
    received: int = 0
    first_at: float | None = None
    last_at: float | None = None
    latencies: list[float] = field(default_factory=list)
    concurrent: int = 0
    max_concurrent: int = 0

    def stats(self) -> Stats:
        return Stats(self.received, self.first_at, self.last_at, self.latencies, self.max_concurrent)

    def count(self) -> Count:
        return Count(self.received, self.first_at, self.last_at, self.max_concurrent)


async def fetch_count(session: aiohttp.ClientSession, base: str, name: str = "") -> Count:
    """The receiver at `base`'s count (of deliveries to `name`, or of all), without the latencies."""
    async with session.get(f"{base}/count/{name}" if name else f"{base}/count") as response:
        return msgspec.json.decode(await response.read(), type=Count)


def serve(port: int) -> None:
    """Serve until killed."""
    counters: dict[str, _Counter] = {}
    decoder = msgspec.json.Decoder(_Envelope)

    async def receive(request: web.Request, delay_ms: int) -> web.Response:
        name = request.match_info["name"]
        counted = [counters.setdefault("", _Counter()), counters.setdefault(name, _Counter()),
                   counters.setdefault("\0window", _Counter())]
        for counter in counted:
            counter.concurrent += 1
            counter.max_concurrent = max(counter.max_concurrent, counter.concurrent)
        try:
            body = await request.read()
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)  # the slow endpoint being simulated
        finally:
            for counter in counted:
                counter.concurrent -= 1
        now = time.time()
        created = datetime.fromisoformat(decoder.decode(body).timestamp).timestamp()
        for counter in counted:
            counter.received += 1
            counter.first_at = counter.first_at or now
            counter.last_at = now
            counter.latencies.append((now - created) * 1000)
        return web.Response(status=204)

    async def hook(request: web.Request) -> web.Response:
        return await receive(request, 0)

    async def slow(request: web.Request) -> web.Response:
        return await receive(request, int(request.match_info["ms"]))

    async def stats(request: web.Request) -> web.Response:
        counter = counters.get(request.match_info.get("name", ""), _Counter())
        return web.Response(body=msgspec.json.encode(counter.stats()), content_type="application/json")

    async def count(request: web.Request) -> web.Response:
        counter = counters.get(request.match_info.get("name", ""), _Counter())
        return web.Response(body=msgspec.json.encode(counter.count()), content_type="application/json")

    async def window(_: web.Request) -> web.Response:
        counter = counters.pop("\0window", _Counter())
        return web.Response(body=msgspec.json.encode(counter.stats()), content_type="application/json")

    async def reset(_: web.Request) -> web.Response:
        counters.clear()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook/{name}", hook)
    app.router.add_post("/slow/{ms:\\d+}/{name}", slow)
    app.router.add_get("/stats", stats)
    app.router.add_get("/stats/{name}", stats)
    app.router.add_get("/count", count)
    app.router.add_get("/count/{name}", count)
    app.router.add_post("/reset", reset)
    app.router.add_post("/window", window)
    # The receiver shares the machine with what the bench measures: the cheaper loop where installed.
    if has_uvloop():
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=1024, loop=loop)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
