"""Problem documents (RFC 9457, application/problem+json) for every error the API answers."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import psycopg
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.response.base import ASGIResponse
from litestar.types import ExceptionHandlersMap
from psycopg_pool import PoolTimeout

PROBLEM_MEDIA_TYPE = "application/problem+json"

log = structlog.get_logger("relay.api")

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class FieldError(msgspec.Struct):
    """One invalid field: where it is (`$.events[3].type`) and what is wrong."""

    field: str
    message: str


class ProblemDocument(msgspec.Struct, omit_defaults=True):
    """The body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] = []
    required_scope: str | None = None  # on a 403 for an API key without the route's scope


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self, status: int, detail: str, *, field: str | None = None, headers: dict[str, str] | None = None,
        message: str | None = None, required_scope: str | None = None,
    ):
        super().__init__(detail)
        self.required_scope = required_scope
        self.status = status
        self.detail = detail
        self.errors = [FieldError(field, message or detail)] if field else []
        self.headers = headers or {}


def problem_response(
    status: int, detail: str, errors: list[FieldError] | None = None, headers: dict[str, str] | None = None,
    required_scope: str | None = None,
) -> Response[ProblemDocument]:
    """Build the response for a problem."""
    title = _TITLES.get(status, "Error")
    doc = ProblemDocument(
        type=f"https://relay.dev/problems/{title.lower().replace(' ', '-')}",
        title=title,
        status=status,
        detail=detail,
        errors=errors or [],
        required_scope=required_scope,
    )
    return Response(doc, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _handle_problem(_: Request[Any, Any, Any], exc: Problem) -> Response[ProblemDocument]:
    return problem_response(exc.status, exc.detail, exc.errors, exc.headers, exc.required_scope)


def _handle_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ProblemDocument]:
    errors = []
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, dict):
                message = str(item.get("message", ""))
                errors.append(FieldError(field_path(str(item.get("key") or ""), message), message))
    detail = exc.detail
    if exc.status_code == 404 and detail in ("Not Found", ""):
        detail = "No such resource."
    return problem_response(exc.status_code, detail, errors, exc.headers)


_NAMED_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `([^`]+)`")


def field_path(key: str, message: str) -> str:
    """Return the JSON path of the field a body validation error is about.

    Litestar reports msgspec's path without its `$.` (and the body itself as `data`); a
    missing or unknown field is named in the message, not the path: `$.events[3].type`.
    """
    path = "$" if key in ("", "data") else ("$" + key if key.startswith("[") else "$." + key)
    named = _NAMED_FIELD.match(message)
    return f"{path}.{named.group(1)}" if named else path


def _handle_database_down(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDocument]:
    # The request may be retried as it is: with an idempotency key, nothing is stored twice.
    log.warning("api.database_unavailable", path=request.url.path, error_type=type(exc).__name__)
    return problem_response(503, "The database is unavailable; retry shortly.", headers={"Retry-After": "1"})


def _handle_data_error(request: Request[Any, Any, Any], exc: psycopg.DataError) -> Response[ProblemDocument]:
    # psycopg refuses to send text with a NUL character (PostgreSQL cannot store one): that is bad
    # input, wherever it came from (a field, a query parameter). Any other DataError is Relay's fault.
    if "NUL" in str(exc):
        return problem_response(422, "A value contains a NUL character (\\u0000), which cannot be stored.")
    return _handle_unexpected(request, exc)


def _handle_too_deep(_: Request[Any, Any, Any], exc: RecursionError) -> Response[ProblemDocument]:
    # msgspec gives up on JSON nested thousands of levels deep with a RecursionError.
    return problem_response(400, "The JSON body is nested too deeply.")


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDocument]:
    # Log the type and route only: the exception text may quote request data.
    log.error("api.unhandled_error", path=request.url.path, method=request.method, error_type=type(exc).__name__)
    return problem_response(500, "Relay hit an unexpected error; it has been logged.")


exception_handlers: ExceptionHandlersMap = {
    Problem: _handle_problem,
    HTTPException: _handle_http,
    psycopg.OperationalError: _handle_database_down,
    psycopg.DataError: _handle_data_error,
    RecursionError: _handle_too_deep,
    PoolTimeout: _handle_database_down,
    Exception: _handle_unexpected,
}


def answer_error(request: Request[Any, Any, Any], exc: Exception) -> ASGIResponse:
    """Answer `exc` as the app's exception handlers would, for code that runs before any handler (middleware)."""
    handler = next(exception_handlers[cls] for cls in type(exc).__mro__ if cls in exception_handlers)
    return handler(request, exc).to_asgi_response(app=None, request=request)


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """Document problem responses in the OpenAPI schema."""
    return {
        status: ResponseSpec(data_container=ProblemDocument, description=_TITLES[status], media_type=PROBLEM_MEDIA_TYPE)
        for status in statuses
    }
