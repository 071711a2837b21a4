"""What the dashboard's list and form pages share: filters, paging links, and the API's refusals shown to people."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request
from litestar.response import Redirect, Template

from relay.ui.api_client import Api, ApiError
from relay.ui.pages import page, redirect

ENDPOINTS_SHOWN = 200  # endpoints named in filters and rows; beyond these a row shows the id


def problem_page(request: Request[Any, Any, Any], error: ApiError) -> Template:
    """Answer a refused API call on a page: the not-found page for a 404, the API's message otherwise."""
    if error.status == 404:
        return page(request, "not_found.html", message=error.detail, status_code=404)
    return page(request, "problem.html", message=error.detail,
                status_code=error.status if 400 <= error.status < 500 else 502)


def not_replayed(request: Request[Any, Any, Any], error: ApiError, back: str) -> Template | Redirect:
    """Answer a refused replay: the not-found page for an unknown id, else its reason on the page it was asked from."""
    if error.status == 404:
        return problem_page(request, error)
    return redirect(back, f"Not replayed: {error.detail}")


def field_of(error: ApiError) -> str | None:
    """Return the field the API says is wrong (`$.rate_limit` → `rate_limit`), if it names one."""
    errors = error.problem.get("errors") or []
    named = error.field or (errors[0].get("field") if errors and isinstance(errors[0], dict) else None)
    return str(named).removeprefix("$.") if named else None


def problem_message(error: ApiError) -> str:
    """The API's own words on what is wrong: the first field's message, else the problem's detail."""
    errors = error.problem.get("errors") or []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    return str(first.get("message") or error.detail)


def refusal(error: ApiError, labels: dict[str, str] | None = None) -> str:
    """The API's reason for refusing a list's filters, naming the filter (as the form labels it) when it says which."""
    message = problem_message(error)
    field = field_of(error)
    if not field or field in message:
        return message
    return f"{(labels or {}).get(field, field)}: {message}"


def as_utc(value: str | None) -> str | None:
    """Read a `datetime-local` field (the form says its times are UTC) as an ISO 8601 time the API takes.

    Anything else is passed on as typed, for the API to accept or refuse with its own message.
    """
    value = (value or "").strip()
    if len(value) == 16 and value[10] == "T":  # 2024-05-01T10:00
        return f"{value}:00+00:00"
    if len(value) == 19 and value[10] == "T":  # 2024-05-01T10:00:30
        return f"{value}+00:00"
    return value or None


def chosen_filters(values: dict[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    """The filters as typed (empty ones left out): kept in the form, the pager's links and the API call."""
    return {name: str(values[name]).strip() for name in names if values.get(name) and str(values[name]).strip()}


def list_url(path: str, chosen: dict[str, str], **extra: str) -> str:
    """The list at `path` with these filters (and a cursor): what the pager links to."""
    query = urlencode({**chosen, **extra})
    return f"{path}?{query}" if query else path


def paging(path: str, chosen: dict[str, str], cursor: str | None, next_cursor: str | None) -> dict[str, Any]:
    """What a list page's pager and empty state need: whether it is filtered or paged, its first and next links."""
    return {
        "filtered": any(name != "limit" for name in chosen),  # a page size alone filters nothing out
        "paged": bool(cursor),
        "first_url": list_url(path, chosen),
        "next_url": list_url(path, chosen, cursor=next_cursor) if next_cursor else None,
    }


async def filtered_rows(api: Api, path: str, labels: dict[str, str] | None = None, /,
                        **query: Any) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """Read one page of a filtered list: its rows and the next page's cursor, or no rows and why the API refused.

    Only a refusal of the filters (4xx) is the page's to show; a server error is raised, for the problem page.
    """
    try:
        listing = await api.get(path, **query)
    except ApiError as failure:
        if failure.status >= 500:
            raise
        return [], None, refusal(failure, labels)
    return listing["data"], listing["next_cursor"], None


async def endpoints_by_id(api: Api) -> dict[str, dict[str, Any]]:
    """The tenant's endpoints, to name them by URL."""
    listing = await api.get("/v1/endpoints", limit=ENDPOINTS_SHOWN)
    return {endpoint["id"]: endpoint for endpoint in listing["data"]}
