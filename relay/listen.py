"""`relay listen`: a local webhook receiver that prints each delivery and checks its signature."""

from __future__ import annotations

import sys
import time

from aiohttp import web

from relay.signing import verify

_TOLERANCE_S = 300
# Printed for every request (the rest only with --headers): what a webhook receiver looks at.
WEBHOOK_HEADERS = ("content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature",
                   "x-relay-signature")


def make_app(secret: str | None, status: int, out=sys.stdout, all_headers: bool = False) -> web.Application:
    """Return an app that answers every request with `status` and prints it: request line, headers, body."""

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        msg_id = request.headers.get("webhook-id", "")
        timestamp = request.headers.get("webhook-timestamp", "0")
        signature = request.headers.get("webhook-signature", "")
        if secret is None:
            verdict = "not checked (pass --secret)"
        elif not timestamp.isdigit() or abs(time.time() - int(timestamp)) > _TOLERANCE_S:
            verdict = "INVALID (timestamp outside 5 minutes)"
        else:
            verdict = "valid" if verify(secret, msg_id, int(timestamp), body, signature) else "INVALID"
        print(f"{request.method} {request.path_qs} HTTP/{request.version.major}.{request.version.minor}", file=out)
        for name, value in request.headers.items():
            if all_headers or name.lower() in WEBHOOK_HEADERS:
                print(f"{name.lower()}: {value}", file=out)
        print(f"  signature {verdict}", file=out)
        print(f"  {body.decode('utf-8', 'replace')}", file=out, flush=True)
        return web.Response(status=status, text="ok" if status < 300 else "refused")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receive)
    return app


def listen(host: str, port: int, secret: str | None, status: int, all_headers: bool = False) -> None:
    """Serve until Ctrl-C."""
    print(f"listening on http://{host}:{port}/ (answering {status}); Ctrl-C to stop", flush=True)
    web.run_app(make_app(secret, status, all_headers=all_headers), host=host, port=port, access_log=None, print=None)
