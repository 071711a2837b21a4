"""The dead letter page (replay one, discard one, replay all matching) and a bulk operation's live progress."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Response, Template

from relay.ui.api_client import Api, ApiError
from relay.ui.pages import NO_STORE, page, redirect
from relay.ui.refusals import (
    as_utc,
    chosen_filters,
    endpoints_by_id,
    filtered_rows,
    list_url,
    not_replayed,
    paging,
    problem_page,
)

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
PAGE_SIZE = 50
FILTERS = ("endpoint_id", "event_type", "since", "until")
FINISHED = ("succeeded", "failed")


def api_filters(chosen: dict[str, str]) -> dict[str, str | None]:
    """The same filters as the API takes them."""
    return {key: as_utc(value) if key in ("since", "until") else value for key, value in chosen.items()}


def dead_letter_url(chosen: dict[str, str], **extra: str) -> str:
    return list_url("/ui/dead-letter", chosen, **extra)


def back_to_list(target: str | None) -> str:
    """Where a row's form returns: the dead letter with the filters it was showing (never elsewhere)."""
    if target and (target == "/ui/dead-letter" or target.startswith("/ui/dead-letter?")) and "\\" not in target:
        return target
    return "/ui/dead-letter"


def progress_of(operation: dict[str, Any]) -> dict[str, Any]:
    """An operation's progress as the page's bar shows it: `{total, done, status, finished, text}`."""
    total = operation["total"]
    done = operation["replayed"] + operation["skipped"]
    status = operation["status"]
    skipped = (f", {operation['skipped']} skipped (their endpoint is disabled or deleted)"
               if operation["skipped"] else "")
    if status == "queued":
        text = "Waiting for a worker to start…"
    elif status == "running":
        text = f"Replaying: {done} of {total if total is not None else '?'} done{skipped}."
    elif status == "succeeded":
        text = f"Finished: {operation['replayed']} of {total or 0} replayed{skipped}."
    else:
        text = f"Failed after {done} of {total or 0} ({operation['error'] or 'unknown error'}); run it again to go on."
    return {"total": total or 0, "done": done, "status": status, "finished": status in FINISHED, "text": text}


class DeadLetterController(Controller):
    """Dead deliveries: look, replay, discard."""

    path = "/ui/dead-letter"
    include_in_schema = False

    @get("/")
    async def list_page(
        self, request: Request, endpoint_id: str | None = None, event_type: str | None = None,
        since: str | None = None, until: str | None = None, cursor: str | None = None, limit: str | None = None,
    ) -> Template:
        """Show the dead letter, filtered, newest first."""
        chosen = chosen_filters({"endpoint_id": endpoint_id, "event_type": event_type, "since": since,
                                 "until": until}, FILTERS)
        shown = {**chosen, **({"limit": limit} if limit else {})}  # the page size stays on every link, not in replays
        api = Api(request)
        endpoints = await endpoints_by_id(api)
        try:
            rows, next_cursor, error = await filtered_rows(api, "/v1/dead-letter", limit=limit or PAGE_SIZE,
                                                           cursor=cursor, **api_filters(chosen))
        except ApiError as failure:
            return problem_page(request, failure)
        return page(
            request, "dead_letter.html", section="dead-letter", status_code=400 if error else 200,
            rows=rows, endpoints=endpoints, chosen=chosen, error=error,
            here=dead_letter_url(shown, **({"cursor": cursor} if cursor else {})),
            replay_question=self._replay_question(chosen, endpoints),
            **paging("/ui/dead-letter", shown, cursor, next_cursor),
        )

    @post("/{delivery_id:str}/replay")
    async def replay_one(
        self, request: Request, delivery_id: str, data: Annotated[dict[str, str], Form]
    ) -> Template | Redirect:
        """Replay one dead delivery now, as a new delivery."""
        back = back_to_list(data.get("back"))
        try:
            made = await Api(request).post(f"/v1/deliveries/{delivery_id}/replay")
        except ApiError as error:
            return not_replayed(request, error, back)
        return redirect(back, f"Replayed {delivery_id}: the new delivery is {made['id']}.")

    @post("/{delivery_id:str}/discard")
    async def discard_one(
        self, request: Request, delivery_id: str, data: Annotated[dict[str, str], Form]
    ) -> Template | Redirect:
        """Discard one dead delivery: it stays in the log, and leaves the dead letter."""
        back = back_to_list(data.get("back"))
        try:
            await Api(request).delete(f"/v1/dead-letter/{delivery_id}")
        except ApiError as error:
            return problem_page(request, error)
        return redirect(back, f"Discarded {delivery_id}; it stays in the delivery log.")

    @post("/replay")
    async def replay_all(self, request: Request, data: Annotated[dict[str, str], Form]) -> Template | Redirect:
        """Replay every dead delivery the filters select, in the background; watch it on the operation's page."""
        chosen = chosen_filters(data, FILTERS)
        try:
            operation = await Api(request).post("/v1/dead-letter/replay", api_filters(chosen))
        except ApiError as error:
            return not_replayed(request, error, dead_letter_url(chosen))
        return redirect(f"/ui/operations/{operation['id']}", "Bulk replay started.")

    @staticmethod
    def _replay_question(chosen: dict[str, str], endpoints: dict[str, dict[str, Any]]) -> str:
        if not chosen:
            return "Replay every delivery in the dead letter (no filter)?"
        parts = []
        if "endpoint_id" in chosen:
            parts.append(f"to {endpoints.get(chosen['endpoint_id'], {}).get('url', chosen['endpoint_id'])}")
        if "event_type" in chosen:
            parts.append(f"of type {chosen['event_type']}")
        if "since" in chosen:
            parts.append(f"created from {chosen['since'].replace('T', ' ')} UTC")
        if "until" in chosen:
            parts.append(f"created before {chosen['until'].replace('T', ' ')} UTC")
        return f"Replay every dead delivery {', '.join(parts)}?"


class OperationController(Controller):
    """A bulk replay (or endpoint recovery) and its progress."""

    path = "/ui/operations"
    include_in_schema = False

    @get("/{operation_id:str}")
    async def operation_page(self, request: Request, operation_id: str) -> Template:
        """Show an operation with a progress bar that follows it live."""
        try:
            operation = await Api(request).get(f"/v1/operations/{operation_id}")
        except ApiError as error:
            return problem_page(request, error)
        endpoint_id = operation["filter"].get("endpoint_id")
        # Back to the list it was started from: its times as the form's UTC fields show them.
        shown = {key: value[:16] if key in ("since", "until") and value.endswith("+00:00") else value
                 for key, value in chosen_filters(operation["filter"], FILTERS).items()}
        return page(request, "operation.html", section="dead-letter", operation=operation,
                    progress=progress_of(operation), endpoint_id=endpoint_id,
                    back_url=dead_letter_url(shown)
                    if operation["kind"] == "replay_dead_letter" else f"/ui/endpoints/{endpoint_id}")

    @get("/{operation_id:str}/progress")
    async def progress(self, request: Request, operation_id: str) -> Response[dict[str, Any]]:
        """The operation's progress as JSON, for the page's bar."""
        try:
            operation = await Api(request).get(f"/v1/operations/{operation_id}")
        except ApiError as error:
            return Response({"detail": error.detail}, status_code=error.status, headers=NO_STORE)
        return Response(progress_of(operation), headers=NO_STORE)
