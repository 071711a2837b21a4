"""The API keys page: list (prefix only), create (the key shown once), revoke."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from relay.ui.api_client import Api, ApiError
from relay.ui.pages import no_store, page, redirect
from relay.ui.refusals import field_of, paging, problem_message, problem_page

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
PAGE_SIZE = 50


# The form's access choices: (value, label, what it allows). A value is the key's scopes, space separated.
ACCESS = (
    ("admin", "Full access", "admin: send events, read everything and change anything"),
    ("events:write", "Send events only", "events:write: POST /v1/events and /v1/events/batch, nothing else"),
    ("read", "Read only", "read: everything readable, no changes (endpoint secrets excepted)"),
    ("events:write read", "Send events and read", "events:write and read"),
)


def key_request(data: dict[str, str]) -> dict[str, Any]:
    """The API's create body from the form: the rate limit as a number when it is one (the API judges the rest)."""
    body: dict[str, Any] = {"name": data.get("name", "")}
    access = (data.get("scopes") or "admin").split()
    body["scopes"] = access
    rate_limit = (data.get("rate_limit") or "").strip()
    if rate_limit:
        whole = rate_limit.lstrip("-").isdigit() and len(rate_limit) <= 18  # within what JSON numbers carry
        body["rate_limit"] = int(rate_limit) if whole else rate_limit
    return body


def _form_field(field: str | None) -> str | None:
    """The form field an API error names (`scopes[0]` → `scopes`), if it is one of the form's."""
    name = (field or "").split("[")[0]
    return name if name in ("name", "rate_limit", "scopes") else None


class ApiKeysController(Controller):
    """API keys of the tenant."""

    path = "/ui/api-keys"
    include_in_schema = False

    @get("/")
    async def keys_page(self, request: Request, cursor: str | None = None) -> Template:
        """Show the keys and the form that creates one."""
        return await self._render(request, cursor=cursor)

    @post("/")
    async def create(self, request: Request, data: Annotated[dict[str, str], Form]) -> Template:
        """Create a key and show it this once: it is in this answer only, never in a URL, cookie or log."""
        try:
            created = await Api(request).post("/v1/api-keys", key_request(data))
        except ApiError as error:
            if error.status >= 500:
                return problem_page(request, error)
            return await self._render(request, form=data, error=error, status_code=error.status)
        return no_store(await self._render(request, created=created, status_code=201))

    @post("/{key_id:str}/revoke")
    async def revoke(self, request: Request, key_id: str) -> Template | Redirect:
        """Revoke a key: the next request made with it is refused."""
        try:
            await Api(request).delete(f"/v1/api-keys/{key_id}")
        except ApiError as error:
            return problem_page(request, error)
        return redirect("/ui/api-keys", f"Revoked {key_id}; requests made with it now get 401.")

    async def _render(self, request: Request, *, cursor: str | None = None, form: dict[str, str] | None = None,
                      error: ApiError | None = None, created: dict[str, Any] | None = None,
                      status_code: int = 200) -> Template:
        try:
            listing = await Api(request).get("/v1/api-keys", limit=PAGE_SIZE, cursor=cursor)
        except ApiError as failure:
            return problem_page(request, failure)
        field = field_of(error) if error else None
        return page(
            request, "api_keys.html", section="api-keys", status_code=status_code,
            keys=listing["data"], created=created, **paging("/ui/api-keys", {}, cursor, listing["next_cursor"]),
            form={"name": (form or {}).get("name", ""), "rate_limit": (form or {}).get("rate_limit", ""),
                  "scopes": (form or {}).get("scopes", "admin")},
            access=ACCESS,
            error=problem_message(error) if error else None,
            error_field=_form_field(field),
        )
