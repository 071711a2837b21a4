"""The endpoints pages: the list, register and edit forms, the detail page and what can be done to an endpoint."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from relay.ui.api_client import Api, ApiError
from relay.ui.charts import hourly_chart
from relay.ui.overview import hourly_bars
from relay.ui.pages import NO_STORE, no_store, page, redirect
from relay.ui.refusals import paging

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
PAGE_SIZE = 25  # each row also reads the endpoint's stats: one API call per row
FIELDS = ("url", "event_types", "description", "timeout_seconds", "rate_limit", "max_in_flight", "fifo")
LABELS = {
    "url": "URL", "event_types": "Event types", "description": "Description", "timeout_seconds": "Timeout",
    "rate_limit": "Rate limit", "max_in_flight": "Max in flight", "fifo": "FIFO",
}
_JSON_FIELD = re.compile(r"^\$\.([a-z_]+)")


def event_type_list(text: str) -> list[str]:
    """Read the event-type filter as typed: names separated by commas or spaces."""
    return [name for name in re.split(r"[\s,]+", text) if name]


def number(text: str) -> int | float | str:
    """Read a number field; what is not a number goes to the API as typed, which says what is wrong with it."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def form_values(data: dict[str, str]) -> dict[str, Any]:
    """The form as the user filled it in (kept for re-display when the API refuses it)."""
    values: dict[str, Any] = {name: (data.get(name) or "").strip() for name in FIELDS}
    values["fifo"] = bool(data.get("fifo"))
    return values


def values_of(endpoint: dict[str, Any]) -> dict[str, Any]:
    """An endpoint as the form shows it."""
    return {
        "url": endpoint["url"], "event_types": ", ".join(endpoint["event_types"]),
        "description": endpoint["description"], "timeout_seconds": f"{endpoint['timeout_seconds']:g}",
        "rate_limit": "" if endpoint["rate_limit"] is None else str(endpoint["rate_limit"]),
        "max_in_flight": str(endpoint["max_in_flight"]), "fifo": endpoint["fifo"],
    }


def create_body(values: dict[str, Any]) -> dict[str, Any]:
    """The `POST /v1/endpoints` body for the register form; empty optional fields take the API's defaults."""
    body: dict[str, Any] = {"url": values["url"], "description": values["description"],
                            "event_types": event_type_list(values["event_types"]), "fifo": values["fifo"]}
    for name in ("timeout_seconds", "rate_limit", "max_in_flight"):
        if values[name]:
            body[name] = number(values[name])
    return body


def update_body(values: dict[str, Any], endpoint: dict[str, Any]) -> dict[str, Any]:
    """The `PATCH /v1/endpoints/{id}` body: only what the edit form changed.

    Sending only the changes keeps what the form cannot show as it is: the API reads
    `max_in_flight` as the effective limit, so writing it back unchanged would pin
    today's default on the endpoint.
    """
    body: dict[str, Any] = {}
    if values["url"] != endpoint["url"]:
        body["url"] = values["url"]
    if values["description"] != endpoint["description"]:
        body["description"] = values["description"]
    event_types = event_type_list(values["event_types"])
    if sorted(set(event_types)) != sorted(endpoint["event_types"]):
        body["event_types"] = event_types
    if values["timeout_seconds"] and number(values["timeout_seconds"]) != endpoint["timeout_seconds"]:
        body["timeout_seconds"] = number(values["timeout_seconds"])
    for name in ("rate_limit", "max_in_flight"):  # empty: none / back to Relay's default
        wanted = number(values[name]) if values[name] else None
        if wanted != endpoint[name]:
            body[name] = wanted
    if values["fifo"] != endpoint["fifo"]:
        body["fifo"] = values["fifo"]
    return body


def form_error(exc: ApiError) -> tuple[str, str | None]:
    """The API's refusal as the form shows it: its message, naming the field, and which input it is about."""
    errors = exc.problem.get("errors") or []
    if not errors:
        return exc.detail, None
    first = errors[0]
    match = _JSON_FIELD.match(str(first.get("field") or ""))
    field = match.group(1) if match and match.group(1) in LABELS else None
    message = str(first.get("message") or exc.detail)
    return (f"{LABELS[field]}: {message}" if field else message), field


def not_found(request: Request, exc: ApiError) -> Template:
    """The page for an endpoint id that is not the tenant's (or not an endpoint id at all)."""
    message = exc.detail if exc.status == 404 else "There is no such endpoint."
    return page(request, "not_found.html", section="endpoints", message=message, status_code=404)


class EndpointsController(Controller):
    """Webhook endpoints: list, register, edit, operate, inspect."""

    path = "/ui/endpoints"
    include_in_schema = False

    @get("/")
    async def index(self, request: Request, cursor: str | None = None) -> Template:
        """List the endpoints with their state, circuit and today's figures."""
        api = Api(request)
        try:
            listing = await api.get("/v1/endpoints", limit=PAGE_SIZE, cursor=cursor)
        except ApiError as exc:
            return page(request, "endpoints.html", section="endpoints", endpoints=[], stats={}, next_url=None,
                        error=exc.detail, status_code=exc.status if exc.status < 500 else 502)
        stats = await asyncio.gather(*(_stats_or_none(api, e["id"]) for e in listing["data"]))
        return page(request, "endpoints.html", section="endpoints", endpoints=listing["data"],
                    stats=dict(zip([e["id"] for e in listing["data"]], stats, strict=True)), error=None,
                    **paging("/ui/endpoints", {}, cursor, listing["next_cursor"]))

    @get("/new")
    async def new(self, request: Request) -> Template:
        """Show the register form."""
        values = {name: "" for name in FIELDS} | {"fifo": False}
        return page(request, "endpoint_form.html", section="endpoints", endpoint=None, values=values, error=None,
                    error_field=None)

    @post("/new")
    async def create(self, request: Request, data: Annotated[dict[str, str], Form]) -> Template:
        """Register the endpoint; show its signing secret this once."""
        values = form_values(data)
        try:
            created = await Api(request).post("/v1/endpoints", create_body(values))
        except ApiError as exc:
            error, field = form_error(exc)
            return page(request, "endpoint_form.html", section="endpoints", endpoint=None, values=values,
                        error=error, error_field=field, status_code=exc.status if exc.status < 500 else 502)
        # Rendered from this response, never from a URL or cookie: the secret is not stored anywhere on the way.
        return no_store(page(request, "endpoint_secret.html", section="endpoints", endpoint=created,
                             secret=created["secret"], created=True, previous_valid_until=None, status_code=201))

    @get("/{endpoint_id:str}")
    async def detail(self, request: Request, endpoint_id: str) -> Template:
        """Show an endpoint: its facts, figures, chart, recent deliveries and failures."""
        try:
            return page(request, "endpoint.html", section="endpoints", analysis=None,
                        **await _detail(Api(request), endpoint_id))
        except ApiError as exc:
            return not_found(request, exc)

    @get("/{endpoint_id:str}/live")
    async def live(self, request: Request, endpoint_id: str) -> Template:
        """The part of the detail page that refreshes itself."""
        try:
            return page(request, "_endpoint_live.html", **await _detail(Api(request), endpoint_id))
        except ApiError as exc:
            return not_found(request, exc)

    @get("/{endpoint_id:str}/edit")
    async def edit_form(self, request: Request, endpoint_id: str) -> Template:
        """Show the edit form, filled in with the endpoint as it is."""
        try:
            endpoint = await Api(request).get(f"/v1/endpoints/{endpoint_id}")
        except ApiError as exc:
            return not_found(request, exc)
        return page(request, "endpoint_form.html", section="endpoints", endpoint=endpoint, values=values_of(endpoint),
                    error=None, error_field=None)

    @post("/{endpoint_id:str}/edit")
    async def edit(self, request: Request, endpoint_id: str,
                   data: Annotated[dict[str, str], Form]) -> Template | Redirect:
        """Change what the form changed."""
        api = Api(request)
        values = form_values(data)
        try:
            endpoint = await api.get(f"/v1/endpoints/{endpoint_id}")
        except ApiError as exc:
            return not_found(request, exc)
        body = update_body(values, endpoint)
        if not body:
            return redirect(f"/ui/endpoints/{endpoint_id}", "Nothing to change.")
        try:
            await api.patch(f"/v1/endpoints/{endpoint_id}", body)
        except ApiError as exc:
            if exc.status == 404:
                return not_found(request, exc)
            error, field = form_error(exc)
            return page(request, "endpoint_form.html", section="endpoints", endpoint=endpoint, values=values,
                        error=error, error_field=field, status_code=exc.status if exc.status < 500 else 502)
        return redirect(f"/ui/endpoints/{endpoint_id}", "Endpoint saved.")

    @post("/{endpoint_id:str}/pause")
    async def pause(self, request: Request, endpoint_id: str) -> Template | Redirect:
        """Pause: new deliveries wait until resumed."""
        return await _act(request, endpoint_id, "POST", "pause", None,
                          "Paused: new deliveries wait until you resume.")

    @post("/{endpoint_id:str}/resume")
    async def resume(self, request: Request, endpoint_id: str) -> Template | Redirect:
        """Resume: what waited goes, oldest first."""
        return await _act(request, endpoint_id, "POST", "resume", None, "Resumed: waiting deliveries go now.")

    @post("/{endpoint_id:str}/disable")
    async def disable(self, request: Request, endpoint_id: str) -> Template | Redirect:
        """Disable: nothing more is delivered, and what still waited ends as dead."""
        return await _act(request, endpoint_id, "PATCH", "", {"enabled": False},
                          "Disabled: nothing is delivered to it until you enable it.")

    @post("/{endpoint_id:str}/enable")
    async def enable(self, request: Request, endpoint_id: str) -> Template | Redirect:
        """Enable again."""
        return await _act(request, endpoint_id, "PATCH", "", {"enabled": True}, "Enabled.")

    @post("/{endpoint_id:str}/test")
    async def test(self, request: Request, endpoint_id: str) -> Template | Redirect:
        """Send a `relay.ping` event to this endpoint only."""
        try:
            sent = await Api(request).post(f"/v1/endpoints/{endpoint_id}/test")
        except ApiError as exc:
            return _refused(request, endpoint_id, exc)
        return redirect(f"/ui/endpoints/{endpoint_id}", f"Test ping sent: event {sent['event_id']}.")

    @post("/{endpoint_id:str}/rotate-secret")
    async def rotate_secret(self, request: Request, endpoint_id: str) -> Template | Redirect:
        """Rotate the signing secret; show the new one this once."""
        api = Api(request)
        try:
            endpoint = await api.get(f"/v1/endpoints/{endpoint_id}")
            rotated = await api.post(f"/v1/endpoints/{endpoint_id}/rotate-secret")
        except ApiError as exc:
            return _refused(request, endpoint_id, exc)
        return no_store(page(request, "endpoint_secret.html", section="endpoints", endpoint=endpoint,
                             secret=rotated["key"], created=False,
                             previous_valid_until=rotated["previous_valid_until"]))

    @post("/{endpoint_id:str}/secret")
    async def secret(self, request: Request, endpoint_id: str) -> Response[str]:
        """Answer the signing secret as text, for the detail page's Reveal button."""
        try:
            answer = await Api(request).get(f"/v1/endpoints/{endpoint_id}/secret")
        except ApiError as exc:
            return Response("There is no such endpoint.", status_code=404 if exc.status in (400, 404) else exc.status,
                            media_type=MediaType.TEXT, headers=NO_STORE)
        return Response(answer["key"], media_type=MediaType.TEXT, headers=NO_STORE)

    @post("/{endpoint_id:str}/analysis")
    async def analysis(self, request: Request, endpoint_id: str) -> Template:
        """Run the failure analysis and show its answer on the detail page."""
        api = Api(request)
        try:
            answer = await api.post(f"/v1/ai/analyse-failure/{endpoint_id}")
            return page(request, "endpoint.html", section="endpoints", analysis=answer,
                        **await _detail(api, endpoint_id))
        except ApiError as exc:
            return not_found(request, exc)

    @post("/{endpoint_id:str}/delete")
    async def delete(self, request: Request, endpoint_id: str) -> Template | Redirect:
        """Delete the endpoint (its history stays readable)."""
        try:
            await Api(request).delete(f"/v1/endpoints/{endpoint_id}")
        except ApiError as exc:
            return _refused(request, endpoint_id, exc)
        return redirect("/ui/endpoints", "Endpoint deleted; its delivery history stays readable.")


async def _stats_or_none(api: Api, endpoint_id: str) -> dict[str, Any] | None:
    try:
        stats: dict[str, Any] = await api.get(f"/v1/endpoints/{endpoint_id}/stats")
    except ApiError:
        return None  # deleted since the list was read: the row shows no figures
    return stats


async def _detail(api: Api, endpoint_id: str) -> dict[str, Any]:
    endpoint = await api.get(f"/v1/endpoints/{endpoint_id}")  # first: a 404 here is the page's answer
    stats, bars, deliveries = await asyncio.gather(
        api.get(f"/v1/endpoints/{endpoint_id}/stats"),
        hourly_bars(api, endpoint_id),
        api.get("/v1/deliveries", endpoint_id=endpoint_id, limit=10),
    )
    return {
        "endpoint": endpoint,
        "stats": stats,
        "chart": hourly_chart(bars, label="Deliveries to this endpoint per hour over the last 24 hours"),
        "deliveries": deliveries["data"],
    }


async def _act(request: Request, endpoint_id: str, method: str, action: str, body: Any,
               notice: str) -> Template | Redirect:
    path = f"/v1/endpoints/{endpoint_id}" + (f"/{action}" if action else "")
    try:
        await Api(request).call(method, path, json=body if body is not None else {})
    except ApiError as exc:
        return _refused(request, endpoint_id, exc)
    return redirect(f"/ui/endpoints/{endpoint_id}", notice)


def _refused(request: Request, endpoint_id: str, exc: ApiError) -> Template | Redirect:
    """An action the API refused: the not-found page for an unknown endpoint, else its reason on the endpoint's page."""
    if exc.status in (400, 404):
        return not_found(request, exc)
    return redirect(f"/ui/endpoints/{endpoint_id}", exc.detail)
