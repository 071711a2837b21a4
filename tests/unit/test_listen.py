"""`relay listen` prints what a webhook receiver looks at: the request line, the webhook headers, the body."""

from __future__ import annotations

import asyncio
import io
import time

from aiohttp.test_utils import TestClient, TestServer

from relay.listen import make_app
from relay.signing import new_secret, secret_key, signature_header


def post_to_listener(secret: str | None, all_headers: bool) -> str:
    out = io.StringIO()
    body = b'{"id":"evt_1","type":"a.b","timestamp":"2026-01-01T00:00:00Z","data":{}}'
    timestamp = int(time.time())
    signing_secret = secret or new_secret()
    headers = {
        "content-type": "application/json",
        "webhook-id": "evt_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header([secret_key(signing_secret)], "evt_1", timestamp, body),
        "x-customer": "acme",
    }

    async def go() -> None:
        async with TestClient(TestServer(make_app(secret, 200, out, all_headers=all_headers))) as client:
            response = await client.post("/webhooks?x=1", data=body, headers=headers)
            assert response.status == 200

    asyncio.run(go())
    return out.getvalue()


def test_prints_the_request_line_and_the_webhook_headers() -> None:
    secret = new_secret()
    printed = post_to_listener(secret, all_headers=False)
    lines = printed.splitlines()
    assert lines[0] == "POST /webhooks?x=1 HTTP/1.1"
    for header in ("content-type: application/json", "webhook-id: evt_1", "webhook-timestamp: ",
                   "webhook-signature: v1,"):
        assert any(line.startswith(header) for line in lines), (header, printed)
    assert "signature valid" in printed
    assert '"type":"a.b"' in printed
    assert "x-customer" not in printed  # only with --headers


def test_headers_flag_prints_every_header() -> None:
    printed = post_to_listener(None, all_headers=True)
    assert "x-customer: acme" in printed and "host: " in printed
    assert "signature not checked" in printed
