"""The audit log page: who did what in the tenant (keys, endpoints, secrets, replays, sign-ins), filterable."""

from __future__ import annotations

import json
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from relay.ui.api_client import Api, ApiError
from relay.ui.pages import page
from relay.ui.refusals import as_utc, chosen_filters, filtered_rows, paging, problem_page

PAGE_SIZE = 50
FILTERS = ("action", "actor", "target_type", "target_id", "since", "until", "limit")
FILTER_LABELS = {
    "action": "Action", "actor": "Actor", "target_type": "Target type", "target_id": "Target id",
    "since": "From", "until": "Before", "limit": "Page size", "cursor": "Page",
}
TARGET_TYPES = ("endpoint", "api_key", "event", "delivery", "operation", "event_type", "user")
# Offered as the action field's suggestions; a prefix ending in a dot matches every action under it.
ACTIONS = (
    "endpoint.", "api_key.", "login.", "dead_letter.", "endpoint.created", "endpoint.updated", "endpoint.deleted",
    "endpoint.paused", "endpoint.resumed", "endpoint.enabled", "endpoint.disabled", "endpoint.recovered",
    "endpoint.secret_rotated", "endpoint.secret_revealed", "endpoint.tested", "api_key.created", "api_key.revoked",
    "event.replayed", "delivery.replayed", "dead_letter.replayed", "dead_letter.discarded", "event_type.changed",
    "event_type.deleted", "login.succeeded", "login.failed", "logout", "signup", "password.changed",
)
# Where a target's own page is.
TARGET_PAGES = {"endpoint": "/ui/endpoints/", "event": "/ui/events/", "delivery": "/ui/deliveries/",
                "operation": "/ui/operations/"}


def shown_details(details: dict[str, Any]) -> str:
    """The details as `field: value` lines, each value as JSON (the template escapes them: stored text is never
    markup)."""
    return "\n".join(f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in sorted(details.items()))


class AuditLogController(Controller):
    """The tenant's audit log."""

    path = "/ui/audit-log"
    include_in_schema = False

    @get("/")
    async def list_page(
        self, request: Request, action: str | None = None, actor: str | None = None, target_type: str | None = None,
        target_id: str | None = None, since: str | None = None, until: str | None = None, limit: str | None = None,
        cursor: str | None = None,
    ) -> Template:
        """Show audited actions, newest first, filtered by action, actor, target and time."""
        chosen = chosen_filters({"action": action, "actor": actor, "target_type": target_type,
                                 "target_id": target_id, "since": since, "until": until, "limit": limit}, FILTERS)
        try:
            rows, next_cursor, error = await filtered_rows(
                Api(request), "/v1/audit-log", FILTER_LABELS, limit=chosen.get("limit", PAGE_SIZE), cursor=cursor,
                action=chosen.get("action"), actor=chosen.get("actor"), target_type=chosen.get("target_type"),
                target_id=chosen.get("target_id"), since=as_utc(chosen.get("since")),
                until=as_utc(chosen.get("until")),
            )
        except ApiError as failure:
            return problem_page(request, failure)
        entries = [{**row, "shown_details": shown_details(row["details"]),
                    "target_page": TARGET_PAGES.get(row["target_type"] or "")} for row in rows]
        return page(
            request, "audit_log.html", section="audit-log", status_code=400 if error else 200,
            rows=entries, chosen=chosen, error=error, target_types=TARGET_TYPES, actions=ACTIONS,
            **paging("/ui/audit-log", chosen, cursor, next_cursor),
        )
