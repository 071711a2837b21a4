"""The dashboard reads and changes everything through Relay's own API, in process, as the signed-in user.

A page asks the API exactly what a REST client would (`GET /v1/endpoints`, `POST
/v1/dead-letter/replay` …) with a short-lived access token of the user. So the dashboard
has no queries, validation or permission rules of its own: whatever the API allows,
refuses or scopes to the tenant, the dashboard does too.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
from litestar import Request

from relay.db.accounts import signing_key
from relay.tokens import issue_access_token
from relay.ui.guard import session_of

TOKEN_TTL_SECONDS = 60.0  # one page's worth of API calls


class ApiError(Exception):
    """The API refused a call: its status and problem document (detail, and the field when there is one)."""

    def __init__(self, status: int, problem: dict[str, Any], retry_after: str | None = None) -> None:
        self.status = status
        self.problem = problem
        self.retry_after = retry_after  # the API's Retry-After (a throttled password change), for the page's answer
        self.detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        errors = problem.get("errors") or []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        self.field = problem.get("field") or first.get("field")
        super().__init__(self.detail)


class Api:
    """Calls to the API as the request's signed-in user."""

    def __init__(self, request: Request[Any, Any, Any]) -> None:
        self.request = request

    async def _token(self) -> str:
        state = self.request.app.state
        if state.jwt_secret is None:
            async with state.pool.connection() as conn:
                state.jwt_secret = await signing_key(conn)
        user = session_of(self.request)
        assert user is not None, "the dashboard guard lets no page run without a session"
        return issue_access_token(state.jwt_secret, user.user_id, user.tenant_id, TOKEN_TTL_SECONDS)

    async def call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                   json: Any = None) -> Any:
        """Make one API call; return its decoded body (None for 204); raise ApiError for a 4xx or 5xx."""
        headers = {"authorization": f"Bearer {await self._token()}"}
        content = msgspec.json.encode(json) if json is not None else None
        if content is not None:
            headers["content-type"] = "application/json"
        clean = {key: value for key, value in (params or {}).items() if value not in (None, "")}
        # In process: no socket, no second server. The API sees the browser's address as its client
        # (for the audit log and login throttling), not a header anyone could send.
        peer = (self.request.client.host, self.request.client.port) if self.request.client else ("127.0.0.1", 0)
        transport = httpx.ASGITransport(app=self.request.app, client=peer)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://relay.internal") as client:
            response = await client.request(method, path, params=clean, content=content, headers=headers)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:200]}
            raise ApiError(response.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)},
                           response.headers.get("retry-after"))
        return None if response.status_code == 204 or not response.content else response.json()

    async def get(self, path: str, **params: Any) -> Any:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, json: Any = None) -> Any:
        return await self.call("POST", path, json=json if json is not None else {})

    async def patch(self, path: str, json: Any) -> Any:
        return await self.call("PATCH", path, json=json)

    async def delete(self, path: str) -> Any:
        return await self.call("DELETE", path)
