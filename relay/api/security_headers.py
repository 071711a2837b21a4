"""Safe browser defaults: the headers that keep Relay's pages (dashboard, API docs) from running foreign code.

Every response gets `X-Content-Type-Options: nosniff` (a JSON body is never read as a script or a
page). A page — an HTML answer, an SVG, or a redirect a browser follows — also gets a
Content-Security-Policy (scripts, styles, images and requests from Relay itself only, no inline
script or style, no plugins, never inside a frame), `X-Frame-Options` for browsers that predate
`frame-ancestors`, a Referrer-Policy and Cross-Origin-Opener-Policy.

It runs as the app's `before_send` hook, so it also covers the answers no route handler gives
(unknown paths, middleware redirects and refusals), and costs the event ingest path one look at
its response's headers.
"""

from __future__ import annotations

from litestar.types import Message, Scope

# One policy for every page: the dashboard's styles all live in relay.css (its charts colour themselves
# with classes) and Swagger UI sets its styles through the DOM, which a policy does not restrict; so no
# page needs 'unsafe-inline', for scripts or for styles. `data:` images: Swagger UI's icons.
POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_PAGE_HEADERS = (
    (b"content-security-policy", POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    # `same-origin`: Relay's own requests keep their Referer and Origin (so an Origin check works on a
    # form post), while a link out of the dashboard (an endpoint's URL, a docs link) tells the other site
    # nothing — not the path with its ids and filters, not even Relay's (often internal) host name.
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    _NOSNIFF,
)
_DOCUMENT_TYPES = (b"text/html", b"image/svg+xml")  # what a browser renders as a page, scripts and all


async def add_security_headers(message: Message, scope: Scope) -> None:
    """Add the browser headers to a response as it starts: nosniff to all, the policy and the rest to pages."""
    if message["type"] != "http.response.start":
        return
    headers = list(message.get("headers") or ())
    headers.extend(_PAGE_HEADERS if _is_page(message["status"], headers) else (_NOSNIFF,))
    message["headers"] = headers


def _is_page(status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    if 300 <= status < 400:
        return True  # a redirect the browser follows: framing and referrer rules apply to it too
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.lower().startswith(_DOCUMENT_TYPES)
    return False
