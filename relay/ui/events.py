"""The events pages: the event list (filters, id search) and one event with its payload, deliveries and attempts."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from relay.ui.api_client import Api, ApiError
from relay.ui.deliveries import FILTER_LABELS, FINISHED, STATES
from relay.ui.pages import page, redirect
from relay.ui.refusals import as_utc, chosen_filters, endpoints_by_id, filtered_rows, not_replayed, paging, problem_page

PAGE_SIZE = 50
FILTERS = ("event_type", "since", "until", "limit")
# What the id search opens: an event, or a delivery (support is often handed a delivery's id).
LOOKUPS = (("evt_", "/v1/events/", "/ui/events/"), ("dlv_", "/v1/deliveries/", "/ui/deliveries/"))


def pretty(payload: Any) -> str:
    """The payload as indented JSON, for reading (the receiver gets the exact bytes as posted)."""
    return json.dumps(payload, indent=2, ensure_ascii=False)


class EventsController(Controller):
    """The event list and one event."""

    path = "/ui/events"
    include_in_schema = False

    @get("/")
    async def list_page(
        self, request: Request, event_type: str | None = None, since: str | None = None, until: str | None = None,
        limit: str | None = None, cursor: str | None = None, search: str | None = None,
    ) -> Template | Redirect:
        """Show events, newest first, filtered by type and time; an id typed in the search opens its page."""
        api = Api(request)
        chosen = chosen_filters({"event_type": event_type, "since": since, "until": until, "limit": limit}, FILTERS)
        error = None
        if search and search.strip():
            found = await self._look_up(api, search.strip())
            if isinstance(found, Redirect):
                return found
            error = found
        try:
            rows, next_cursor, refused = await filtered_rows(
                api, "/v1/events", FILTER_LABELS, limit=chosen.get("limit", PAGE_SIZE), cursor=cursor,
                event_type=chosen.get("event_type"), since=as_utc(chosen.get("since")),
                until=as_utc(chosen.get("until")),
            )
        except ApiError as failure:
            return problem_page(request, failure)
        error = refused or error  # the filters' refusal before the search's
        return page(
            request, "events.html", section="events", status_code=400 if error and not search else 200,
            rows=rows, states=STATES, chosen=chosen, error=error, search=(search or "").strip(),
            **paging("/ui/events", chosen, cursor, next_cursor),
        )

    @get("/{event_id:str}")
    async def detail(self, request: Request, event_id: FromPath[str]) -> Template:
        """Show one event: its payload, every delivery and every attempt, with the replay buttons."""
        api = Api(request)
        try:
            event = await api.get(f"/v1/events/{quote(event_id, safe='')}")
        except ApiError as error:
            return problem_page(request, error)
        endpoints = await endpoints_by_id(api) if event["deliveries"] else {}
        return page(
            request, "event.html", section="events", event=event, payload=pretty(event["payload"]),
            endpoints=endpoints, finished=FINISHED,
            replayable=any(d["status"] in FINISHED for d in event["deliveries"]),
        )

    @post("/{event_id:str}/replay")
    async def replay(self, request: Request, event_id: FromPath[str]) -> Template | Redirect:
        """Send the event again to every endpoint whose latest delivery of it has finished."""
        back = f"/ui/events/{quote(event_id, safe='')}"
        try:
            made = await Api(request).post(f"/v1/events/{quote(event_id, safe='')}/replay")
        except ApiError as error:
            return not_replayed(request, error, back)
        count = len(made["deliveries"])
        return redirect(back, f"Replayed the event: {count} new deliver{'y' if count == 1 else 'ies'} "
                              f"({', '.join(d['id'] for d in made['deliveries'])}).")

    @staticmethod
    async def _look_up(api: Api, wanted: str) -> Redirect | str:
        """Open the event or delivery with this id, or say why not."""
        for prefix, api_path, ui_path in LOOKUPS:
            if wanted.startswith(prefix):
                try:
                    await api.get(api_path + quote(wanted, safe=""))
                except ApiError as error:
                    return error.detail if error.status < 500 else f"Relay could not look it up: {error.detail}"
                return redirect(ui_path + quote(wanted, safe=""))
        return "Enter an event id (evt_…) or a delivery id (dlv_…)."
