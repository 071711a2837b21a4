"""The Account page: who is signed in, and changing the password (every session then ends, this one too).

The change goes through the API (`POST /v1/auth/password`: its checks, throttling and
audit row). It ends every dashboard session of the user, this browser's as well; the
browser is sent to the sign-in page to sign in with the new password — which shows at
once that the new password works, and needs no session of its own made here.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from relay.ui.api_client import Api, ApiError
from relay.ui.pages import no_store, page, redirect
from relay.ui.refusals import field_of, problem_message, problem_page
from relay.ui.sign_in import MIN_PASSWORD, session_cookie

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
FIELDS = ("current_password", "new_password", "new_password_again")
CHANGED = ("Your password is changed and every session has ended (other browsers, refresh and access tokens). "
           "Sign in with the new password.")


class AccountController(Controller):
    """The signed-in user's account."""

    path = "/ui/account"
    include_in_schema = False

    @get("/")
    async def account_page(self, request: Request) -> Template:
        """Show the account and the change-password form."""
        return _render(request)

    @post("/password")
    async def change_password(self, request: Request, data: Annotated[dict[str, str], Form]) -> Template | Redirect:
        """Change the password through the API; every session ends, and this browser signs in again."""
        new_password = data.get("new_password") or ""
        if new_password != (data.get("new_password_again") or ""):
            return _render(request, "The two new passwords are not the same.", "new_password_again", 422)
        body = {"current_password": data.get("current_password") or "", "new_password": new_password}
        try:
            # The answer's tokens are dropped unseen: the dashboard signs in with a session cookie, not tokens.
            await Api(request).post("/v1/auth/password", body)
        except ApiError as error:
            if error.status >= 500:
                return problem_page(request, error)
            refused = _render(request, problem_message(error), field_of(error), error.status)
            if error.retry_after:
                refused.headers["Retry-After"] = error.retry_after
            return refused
        response = redirect("/ui/login?next=/ui/account", CHANGED)
        response.cookies.append(session_cookie(request, "", 0))  # its session has ended: the cookie goes too
        return response


def _render(request: Request[Any, Any, Any], error: str | None = None, field: str | None = None,
            status_code: int = 200) -> Template:
    return no_store(page(request, "account.html", section="account", error=error, min_password=MIN_PASSWORD,
                         error_field=field if field in FIELDS else None, status_code=status_code))
