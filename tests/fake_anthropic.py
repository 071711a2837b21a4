"""A local server that speaks Anthropic's Messages API, for testing the Claude path through the real SDK."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from tests.threaded_server import ThreadedServer


class FakeAnthropic(ThreadedServer):
    """Answers POST /v1/messages according to `mode`; records every request body."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = "ok"
        self.answer: dict[str, Any] = {}
        self.requests: list[dict[str, Any]] = []
        self.raw_requests: list[bytes] = []
        self.headers: list[dict[str, str]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)

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
