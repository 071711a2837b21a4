"""A local server that speaks Anthropic's Messages API, for testing the Claude path through the real SDK."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web


class FakeAnthropic:
    """Answers POST /v1/messages according to `mode`; records every request body."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.answer: dict[str, Any] = {}
        self.requests: list[dict[str, Any]] = []
        self.raw_requests: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _messages(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.raw_requests.append(raw)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        self.requests.append(json.loads(raw))
        if self.mode == "slow":
            await asyncio.sleep(5)  # longer than the client's timeout: the server is slow on purpose
        if self.mode == "error":
            return web.json_response({"type": "error", "error": {"type": "api_error", "message": "boom"}}, status=500)
        text = "this is not JSON at all" if self.mode == "malformed" else json.dumps(self.answer)
        return web.json_response({
            "id": "msg_test", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 10},
        })

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()
