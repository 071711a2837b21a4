"""The bench's webhook receiver: answers 204 fast and measures end-to-end latency per delivery.

Run as its own process (`python -m relay.bench.receiver PORT`) so it does not share an
event loop with the load generator. `GET /stats` reports what it has seen.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime

import msgspec
from aiohttp import web


class _Envelope(msgspec.Struct):
    timestamp: str


class Stats(msgspec.Struct):
    """What the receiver has counted since the last reset."""

    received: int
    first_at: float | None
    last_at: float | None
    latencies_ms: list[float]


def serve(port: int) -> None:
    """Serve until killed."""
    state = {"received": 0, "first_at": None, "last_at": None, "latencies": []}
    decoder = msgspec.json.Decoder(_Envelope)

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        created = datetime.fromisoformat(decoder.decode(body).timestamp).timestamp()
        state["received"] += 1
        state["first_at"] = state["first_at"] or now
        state["last_at"] = now
        state["latencies"].append((now - created) * 1000)
        return web.Response(status=204)

    async def stats(_: web.Request) -> web.Response:
        out = Stats(state["received"], state["first_at"], state["last_at"], state["latencies"])
        return web.Response(body=msgspec.json.encode(out), content_type="application/json")

    async def reset(_: web.Request) -> web.Response:
        state.update(received=0, first_at=None, last_at=None, latencies=[])
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook/{name}", hook)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
