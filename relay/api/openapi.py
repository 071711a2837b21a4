"""Make the served OpenAPI document say what the API really enforces.

Litestar does not mark request bodies that refuse unknown fields; clients and
schema-driven test tools then send extras that Relay rightly rejects.
"""

from __future__ import annotations

import msgspec
from litestar import Litestar
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Reference, RequestBody

from relay.api.errors import PROBLEM_MEDIA_TYPE

# Any route can answer these: malformed input of any kind, a value PostgreSQL cannot store
# (a NUL character), and the database being away.
_EVERYWHERE = {
    "400": "Malformed request",
    "422": "A value cannot be accepted",
    "503": "The database is unavailable; retry shortly",
}


def mark_strict_bodies(app: Litestar) -> None:
    """Set `additionalProperties: false` on every component made from a Struct that forbids unknown fields."""
    strict = {cls.__name__ for cls in _all_structs() if cls.__struct_config__.forbid_unknown_fields}
    schema = app.openapi_schema
    for name, component in (schema.components.schemas or {}).items():
        if name in strict:
            component.additional_properties = False


def _all_structs() -> list[type[msgspec.Struct]]:
    found, pending = [], list(msgspec.Struct.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__.startswith("relay.api")]


def document_decoded_bodies(app: Litestar) -> None:
    """Document the bodies that handlers decode themselves (once, for speed) as the Structs they validate against."""
    schema = app.openapi_schema
    item = (schema.paths or {}).get("/v1/events")
    if item is not None and item.post is not None:
        item.post.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=Reference(ref="#/components/schemas/EventCreate"))},
            required=True,
        )


def document_common_errors(app: Litestar) -> None:
    """Add the problem responses every route can give to each operation that does not list them."""
    schema = app.openapi_schema
    problem = OpenAPIMediaType(schema=Reference(ref="#/components/schemas/ProblemDocument"))
    for path, item in (schema.paths or {}).items():
        if path.startswith("/schema") or path == "/health":
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            for status, description in _EVERYWHERE.items():
                operation.responses.setdefault(
                    status, OpenAPIResponse(description=description, content={PROBLEM_MEDIA_TYPE: problem})
                )
