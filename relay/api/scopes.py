"""What each API route needs of an API key: the one place where routes declare their scope.

A key has one or more scopes:

- `events:write` — send events (`POST /v1/events`, `POST /v1/events/batch`) and nothing else;
- `read` — everything readable, no changes (endpoint secrets excepted: they are credentials);
- `admin` — everything (the scope of `relay tenant create`'s key and of signed-in users).

`admin` includes the other two. The Authentication middleware (relay/api/auth.py) looks up
the route's scope here before the handler runs and answers 403 with a problem document naming
the missing scope. A route missing from this table needs `admin`, so a new route is never
reachable with less by accident (tests/integration/test_scopes.py fails until it is listed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Final

EVENTS_WRITE: Final = "events:write"
READ: Final = "read"
ADMIN: Final = "admin"
SCOPES: Final = (EVENTS_WRITE, READ, ADMIN)
ANY: Final = "any"  # every valid credential, whatever its scopes

# (method, path template) → scope. GET also covers HEAD.
ROUTE_SCOPES: Final[dict[tuple[str, str], str]] = {
    # sending events: the producer's key needs nothing else
    ("POST", "/v1/events"): EVENTS_WRITE,
    ("POST", "/v1/events/batch"): EVENTS_WRITE,
    ("GET", "/v1/events/batch"): ANY,  # answers 404 "No event 'batch'" to every caller
    ("GET", "/v1/auth/me"): ANY,  # which tenant and key a credential is: every key may ask
    ("POST", "/v1/auth/password"): ADMIN,  # a user's own password (users have admin); a key gets 403: it has none
    # reading
    ("GET", "/v1/events"): READ,
    ("GET", "/v1/events/{event_id}"): READ,
    ("GET", "/v1/deliveries"): READ,
    ("GET", "/v1/deliveries/{delivery_id}"): READ,
    ("GET", "/v1/dead-letter"): READ,
    ("GET", "/v1/endpoints"): READ,
    ("GET", "/v1/endpoints/{endpoint_id}"): READ,
    ("GET", "/v1/endpoints/{endpoint_id}/stats"): READ,
    ("GET", "/v1/event-types"): READ,
    ("GET", "/v1/event-types/{name}"): READ,
    ("GET", "/v1/operations/{operation_id}"): READ,
    ("GET", "/v1/stats"): READ,
    ("GET", "/v1/stats/hourly"): READ,
    ("GET", "/v1/ai/alerts"): READ,
    ("GET", "/v1/api-keys"): READ,  # names and prefixes only, never a key
    # asking about failures and payloads changes nothing
    ("POST", "/v1/ai/analyse-failure/{endpoint_id}"): READ,
    ("POST", "/v1/ai/validate-payload"): READ,
    ("POST", "/v1/ai/debug"): READ,
    # everything that changes something, and the endpoint secrets
    ("GET", "/v1/endpoints/{endpoint_id}/secret"): ADMIN,
    ("POST", "/v1/endpoints"): ADMIN,
    ("PATCH", "/v1/endpoints/{endpoint_id}"): ADMIN,
    ("DELETE", "/v1/endpoints/{endpoint_id}"): ADMIN,
    ("POST", "/v1/endpoints/{endpoint_id}/pause"): ADMIN,
    ("POST", "/v1/endpoints/{endpoint_id}/resume"): ADMIN,
    ("POST", "/v1/endpoints/{endpoint_id}/recover"): ADMIN,
    ("POST", "/v1/endpoints/{endpoint_id}/rotate-secret"): ADMIN,
    ("POST", "/v1/endpoints/{endpoint_id}/test"): ADMIN,
    ("POST", "/v1/endpoints/{endpoint_id}/verify"): ADMIN,
    ("POST", "/v1/events/{event_id}/replay"): ADMIN,
    ("POST", "/v1/deliveries/{delivery_id}/replay"): ADMIN,
    ("POST", "/v1/dead-letter/replay"): ADMIN,
    ("DELETE", "/v1/dead-letter/replay"): ADMIN,
    ("DELETE", "/v1/dead-letter/{delivery_id}"): ADMIN,
    ("POST", "/v1/event-types"): ADMIN,
    ("DELETE", "/v1/event-types/{name}"): ADMIN,
    ("POST", "/v1/api-keys"): ADMIN,
    ("DELETE", "/v1/api-keys/{key_id}"): ADMIN,
    ("GET", "/v1/audit-log"): ADMIN,  # who did what: for the tenant's admins only
}

_PARAM_TYPE = re.compile(r"\{(\w+):[^}]+\}")


def template_of(path: str) -> str:
    """`/v1/endpoints/{endpoint_id:str}` → `/v1/endpoints/{endpoint_id}` (the route table's and the scope's forms)."""
    return _PARAM_TYPE.sub(r"{\1}", path)


@lru_cache(maxsize=1024)  # one entry per (method, route): the regex runs once per route, not per request
def required_scope(method: str, path_template: str) -> str:
    """Return the scope a request needs: the route's declared one, else `admin`."""
    method = "GET" if method == "HEAD" else method
    return ROUTE_SCOPES.get((method, template_of(path_template)), ADMIN)


def allows(scopes: frozenset[str], required: str) -> bool:
    """Tell whether a key with `scopes` may call a route that needs `required`."""
    return required == ANY or ADMIN in scopes or required in scopes


def normalise(scopes: Sequence[str]) -> list[str]:
    """Return the scopes in their canonical order without repeats (validation is the caller's)."""
    return [scope for scope in SCOPES if scope in scopes]
