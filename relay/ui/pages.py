"""Rendering a dashboard page: the template, the signed-in user, the navigation and a one-time notice."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from litestar import Request
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template

from relay.ui.guard import session_of

NOTICE_COOKIE = "relay_notice"  # a message for the next page (after a form post redirects), shown once
NO_STORE = {"cache-control": "no-store"}  # answers no cache may keep: a secret shown once, a live progress

NAV = (
    ("overview", "Overview", "/ui"),
    ("endpoints", "Endpoints", "/ui/endpoints"),
    ("events", "Events", "/ui/events"),
    ("deliveries", "Deliveries", "/ui/deliveries"),
    ("dead-letter", "Dead letter", "/ui/dead-letter"),
    ("alerts", "Alerts", "/ui/alerts"),
    ("api-keys", "API keys", "/ui/api-keys"),
    ("audit-log", "Audit log", "/ui/audit-log"),
)  # the Account page is the signed-in user's name at the top right


def page(request: Request[Any, Any, Any], template: str, *, section: str = "", status_code: int = 200,
         **context: Any) -> Template:
    """Render `template` with the page's context; a notice left by the previous form post is shown once."""
    raw = request.cookies.get(NOTICE_COOKIE)
    notice = unquote(raw)[:300] if raw else None
    cookies = [Cookie(key=NOTICE_COOKIE, value="", path="/ui", max_age=0)] if raw else []
    return Template(
        template_name=template,
        context={"user": session_of(request), "nav": NAV, "section": section, "notice": notice, **context},
        status_code=status_code,
        cookies=cookies,
    )


def no_store(template: Template) -> Template:
    """Keep `template` out of every cache: it shows a secret this once (a new API key, a signing secret)."""
    template.headers.update(NO_STORE)
    return template


def redirect(url: str, notice: str | None = None) -> Redirect:
    """Go to `url` after a form post (303: the browser GETs it), with a notice for that page."""
    cookies = []
    if notice:
        cookies.append(Cookie(key=NOTICE_COOKIE, value=quote(notice), path="/ui", httponly=True, samesite="strict",
                              max_age=60))
    return Redirect(url, status_code=303, cookies=cookies)


def safe_next(target: str | None) -> str:
    """Return where to go after signing in: a dashboard path only (never another site)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui"
