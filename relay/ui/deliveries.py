"""The deliveries pages: the filterable delivery log and one delivery with its attempts as a timeline."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, Parameter
from litestar.response import Redirect, Template

from relay.states import TERMINAL, DeliveryState
from relay.ui.api_client import Api, ApiError
from relay.ui.pages import page, redirect, safe_next
from relay.ui.refusals import as_utc, chosen_filters, endpoints_by_id, filtered_rows, not_replayed, paging, problem_page

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
PAGE_SIZE = 50
STATES = [state.value for state in DeliveryState]
FINISHED = frozenset(state.value for state in TERMINAL)
FILTERS = ("state", "endpoint_id", "event_type", "event_id", "since", "until", "limit")
# How the forms label the API's parameters, to name the one the API refuses.
FILTER_LABELS = {
    "status": "State", "endpoint_id": "Endpoint", "event_type": "Event type", "event_id": "Event id",
    "since": "Created from", "until": "Created before", "limit": "Page size", "cursor": "Page",
}


async def replay_delivery(request: Request[Any, Any, Any], delivery_id: str, back: str | None) -> Template | Redirect:
    """Replay one finished delivery; go `back` (a dashboard page) or to the new delivery, with a notice."""
    back_to = safe_next(back) if back else None
    try:
        made = await Api(request).post(f"/v1/deliveries/{quote(delivery_id, safe='')}/replay")
    except ApiError as error:
        return not_replayed(request, error, back_to or f"/ui/deliveries/{quote(delivery_id, safe='')}")
    return redirect(back_to or f"/ui/deliveries/{made['id']}",
                    f"Replayed {delivery_id} as a new delivery, {made['id']}.")


class DeliveriesController(Controller):
    """The delivery log and one delivery."""

    path = "/ui/deliveries"
    include_in_schema = False

    @get("/")
    async def list_page(
        self, request: Request, delivery_state: Annotated[str | None, Parameter(query="state")] = None,
        endpoint_id: str | None = None, event_type: str | None = None, event_id: str | None = None,
        since: str | None = None, until: str | None = None, limit: str | None = None, cursor: str | None = None,
    ) -> Template:
        """Show the delivery log, newest first, filtered by state, endpoint, event type and time."""
        # `state` is Litestar's name for the app state, hence the parameter's longer name.
        chosen = chosen_filters({"state": delivery_state, "endpoint_id": endpoint_id, "event_type": event_type,
                                 "event_id": event_id, "since": since, "until": until, "limit": limit}, FILTERS)
        api = Api(request)
        endpoints = await endpoints_by_id(api)
        try:
            rows, next_cursor, error = await filtered_rows(
                api, "/v1/deliveries", FILTER_LABELS, limit=chosen.get("limit", PAGE_SIZE), cursor=cursor,
                status=chosen.get("state"), endpoint_id=chosen.get("endpoint_id"), event_type=chosen.get("event_type"),
                event_id=chosen.get("event_id"), since=as_utc(chosen.get("since")), until=as_utc(chosen.get("until")),
            )
        except ApiError as failure:
            return problem_page(request, failure)
        return page(
            request, "deliveries.html", section="deliveries", status_code=400 if error else 200,
            rows=rows, endpoints=endpoints, states=STATES, chosen=chosen, error=error,
            **paging("/ui/deliveries", chosen, cursor, next_cursor),
        )

    @get("/{delivery_id:str}")
    async def detail(self, request: Request, delivery_id: FromPath[str]) -> Template:
        """Show one delivery: its facts, its attempts as a timeline, and Replay when it has finished."""
        api = Api(request)
        try:
            delivery = await api.get(f"/v1/deliveries/{quote(delivery_id, safe='')}")
        except ApiError as error:
            return problem_page(request, error)
        return page(request, "delivery.html", section="deliveries", delivery=delivery,
                    endpoint=await endpoint_or_none(api, delivery["endpoint_id"]),
                    finished=delivery["status"] in FINISHED)

    @post("/{delivery_id:str}/replay")
    async def replay(self, request: Request, delivery_id: FromPath[str],
                     data: Annotated[dict[str, str], Form]) -> Template | Redirect:
        """Replay a finished delivery as a new one."""
        return await replay_delivery(request, delivery_id, data.get("back"))


async def endpoint_or_none(api: Api, endpoint_id: str) -> dict[str, Any] | None:
    """The endpoint a delivery went to, or None when it cannot be read (deleted): the page then shows its id."""
    try:
        endpoint: dict[str, Any] = await api.get(f"/v1/endpoints/{quote(endpoint_id, safe='')}")
    except ApiError:
        return None
    return endpoint
