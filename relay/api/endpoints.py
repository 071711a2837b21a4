"""`/v1/endpoints`: register, list, read, change and delete webhook endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import httpx
import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from msgspec import UNSET, Meta, UnsetType
from psycopg.types.json import Jsonb

from relay.api.audit_log import audit
from relay.api.errors import Problem, problem_responses
from relay.api.events import Channel
from relay.api.pagination import Cursor, Limit, Page, page_of
from relay.db.tenant_db import TenantDb
from relay.ids import new_id
from relay.jobs import defer_verification
from relay.settings import Settings
from relay.signing import new_secret
from relay.urlguard import AddressPolicy, BlockedAddress
from relay.webhook_url import normalise_webhook_url

Url = Annotated[str, Meta(min_length=8, max_length=2048, pattern=r"^https?://[^ \t\r\n]+$")]
EventTypeFilter = Annotated[str, Meta(max_length=255, pattern=r"^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?)$")]
HeaderName = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")]
HeaderValue = Annotated[str, Meta(max_length=4096, pattern=r"^[^\r\n\x00]*$")]
Timeout = Annotated[float, Meta(ge=1, le=60, description="Seconds the whole attempt may take (1-60).")]
Secret = Annotated[str, Meta(pattern=r"^whsec_[A-Za-z0-9+/]{32,88}={0,2}$")]
Description = Annotated[str, Meta(max_length=1024)]
RetrySchedule = Annotated[
    list[Annotated[float, Meta(ge=0, le=7 * 86400)]],
    Meta(min_length=1, max_length=20, description="Seconds to wait before each retry, after the first attempt."),
]
RateLimit = Annotated[int, Meta(ge=1, le=100_000, description="At most this many deliveries per second.")]
MaxInFlight = Annotated[int, Meta(ge=1, le=1000, description="At most this many attempts in flight at once (1-1000).")]
EndpointId = Annotated[str, PathParameter(max_length=64, description="An endpoint id (`ep_…`).")]

# Headers Relay sets itself; an endpoint may not replace them.
RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "user-agent", "host", "connection", "transfer-encoding",
     "webhook-id", "webhook-timestamp", "webhook-signature", "x-relay-signature"}
)


class EndpointCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new endpoint. Empty `event_types` receives every type; `invoice.*` every type under `invoice.`."""

    url: Url
    description: Description = ""
    event_types: Annotated[list[EventTypeFilter], Meta(max_length=100)] = []
    channels: Annotated[list[Channel], Meta(max_length=20)] = []
    headers: Annotated[dict[HeaderName, HeaderValue], Meta(max_length=20)] = {}
    enabled: bool = True
    timeout_seconds: Timeout | None = None
    secret: Secret | None = None
    retry_schedule: RetrySchedule | None = None
    rate_limit: RateLimit | None = None
    max_in_flight: MaxInFlight | None = None  # None: RELAY_ENDPOINT_MAX_IN_FLIGHT
    fifo: bool = False
    legacy_signature: bool = False
    verify: bool = False


class EndpointUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Fields to change; omitted fields stay as they are."""

    url: Url | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    event_types: Annotated[list[EventTypeFilter], Meta(max_length=100)] | UnsetType = UNSET
    channels: Annotated[list[Channel], Meta(max_length=20)] | UnsetType = UNSET
    headers: Annotated[dict[HeaderName, HeaderValue], Meta(max_length=20)] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    timeout_seconds: Timeout | UnsetType = UNSET
    retry_schedule: RetrySchedule | None | UnsetType = UNSET
    rate_limit: RateLimit | None | UnsetType = UNSET
    max_in_flight: MaxInFlight | None | UnsetType = UNSET  # null: back to the default
    fifo: bool | UnsetType = UNSET
    legacy_signature: bool | UnsetType = UNSET


class EndpointOut(msgspec.Struct):
    """An endpoint as the API shows it (the secret only at creation and via `/secret`)."""

    id: str
    url: str
    description: str
    event_types: list[str]
    channels: list[str]
    headers: dict[str, str]
    enabled: bool
    disabled_reason: str | None
    timeout_seconds: float
    retry_schedule: list[float] | None
    rate_limit: int | None
    max_in_flight: int  # the effective limit: the endpoint's own or RELAY_ENDPOINT_MAX_IN_FLIGHT
    fifo: bool
    legacy_signature: bool
    paused: bool
    verification: str
    verification_error: str | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    """The created endpoint with its signing secret."""

    secret: str = ""


class EndpointSecret(msgspec.Struct):
    """An endpoint's current signing secret."""

    key: str


def endpoint_out(row: dict[str, Any], settings: Settings) -> EndpointOut:
    """Shape a database row for the API."""
    return EndpointOut(
        id=row["id"],
        url=row["url"],
        description=row["description"],
        event_types=row["event_types"],
        channels=row["channels"],
        headers=row["headers"],
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        timeout_seconds=row["timeout_ms"] / 1000,
        retry_schedule=row["retry_schedule"],
        rate_limit=row["rate_limit"],
        max_in_flight=row["max_in_flight"] or settings.endpoint_max_in_flight,
        fifo=row["fifo"],
        legacy_signature=row["legacy_signature"],
        paused=row["paused"],
        verification=row["verification"],
        verification_error=row["verification_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def audited_fields(data: EndpointCreate | EndpointUpdate) -> dict[str, Any]:
    """The fields a request set, as the audit log records them: the secret never, custom headers by name only
    (their values are often credentials)."""
    fields: dict[str, Any] = {}
    for name in data.__struct_fields__:
        value = getattr(data, name)
        if name == "secret" or value is UNSET:
            continue
        fields[name] = sorted(value) if name == "headers" else value
    return fields


def check_url(url: str, policy: AddressPolicy) -> str:
    """Return the URL as given if the sender can request it; refuse one it cannot, or a refused address (SSRF).

    The URL is stored as the user typed it (as Svix and Stripe show it back); the sender
    requests the same URL as `normalise_webhook_url` reads it (IDNA, default port, case).
    """
    try:
        normalised = normalise_webhook_url(url)
    except ValueError as exc:
        raise Problem(422, f"The URL is not valid: {exc}.", field="$.url") from None
    try:
        policy.check_literal(httpx.URL(normalised).host)
    except BlockedAddress as exc:
        raise Problem(422, f"Relay does not deliver there: {exc}.", field="$.url") from None
    return url


def check_headers(headers: dict[str, str]) -> None:
    """Reject custom headers that would replace Relay's own."""
    for name in headers:
        if name.lower() in RESERVED_HEADERS:
            raise Problem(422, f"Header {name!r} is set by Relay and cannot be overridden.", field=f"$.headers.{name}")


async def endpoint_or_404(
    db: TenantDb, endpoint_id: str, query: str = "get_endpoint_without_secrets", **params: Any
) -> dict[str, Any]:
    """Run `query` on one of the tenant's endpoints and return its row; 404 when the endpoint is not the tenant's.

    Another tenant's endpoint gets the same answer as one that never existed.
    """
    row = await db.fetch_one(query, id=endpoint_id, **params)
    if row is None:
        raise Problem(404, f"No endpoint {endpoint_id!r}.")
    return row


class EndpointController(Controller):
    """Webhook endpoints of the calling tenant."""

    path = "/v1/endpoints"
    tags = ["endpoints"]

    @post("/", operation_id="createEndpoint", status_code=201, responses=problem_responses(400, 401, 422))
    async def create(
        self, request: Request, db: NamedDependency[TenantDb], address_policy: NamedDependency[AddressPolicy],
        data: JSONBody[EndpointCreate],
    ) -> EndpointCreated:
        """Register an endpoint and return it with its signing secret (shown here and via `/secret`)."""
        url = check_url(data.url, address_policy)
        check_headers(data.headers)
        timeout = data.timeout_seconds or db.settings.default_timeout_seconds
        async with db.transaction():
            row = await db.fetch_one(
                "insert_endpoint",
                id=new_id("ep"),
                url=url,
                description=data.description,
                secret=data.secret or new_secret(),
                event_types=sorted(set(data.event_types)),
                channels=sorted(set(data.channels)),
                headers=Jsonb(data.headers),
                enabled=data.enabled,
                timeout_ms=int(timeout * 1000),
                retry_schedule=data.retry_schedule,
                rate_limit=data.rate_limit,
                max_in_flight=data.max_in_flight,
                fifo=data.fifo,
                legacy_signature=data.legacy_signature,
                verification="pending" if data.verify else "not_required",
            )
            assert row is not None
            await audit(db, request, "endpoint.created", "endpoint", row["id"], **audited_fields(data))
        if data.verify:
            await defer_verification(db.tenant_id, row["id"], db.jobs)
        return EndpointCreated(**msgspec.structs.asdict(endpoint_out(row, db.settings)), secret=row["secret"])

    @get("/", operation_id="listEndpoints", responses=problem_responses(400, 401))
    async def list(self, db: NamedDependency[TenantDb], limit: Limit = 50, cursor: Cursor = None) -> Page[EndpointOut]:
        """List endpoints, newest first."""
        rows = await db.fetch_all("list_endpoints", cursor=cursor, limit=limit + 1)
        return page_of([endpoint_out(row, db.settings) for row in rows], limit)

    @get("/{endpoint_id:str}", operation_id="getEndpoint", responses=problem_responses(401, 404))
    async def read(self, db: NamedDependency[TenantDb], endpoint_id: EndpointId) -> EndpointOut:
        """Read one endpoint."""
        return endpoint_out(await endpoint_or_404(db, endpoint_id), db.settings)

    @get("/{endpoint_id:str}/secret", operation_id="getEndpointSecret", responses=problem_responses(401, 404))
    async def secret(self, request: Request, db: NamedDependency[TenantDb], endpoint_id: EndpointId) -> EndpointSecret:
        """Read an endpoint's signing secret (the audit log records who did)."""
        async with db.transaction():
            row = await endpoint_or_404(db, endpoint_id, "get_endpoint_secrets")
            await audit(db, request, "endpoint.secret_revealed", "endpoint", endpoint_id)
        return EndpointSecret(key=row["secret"])

    @patch("/{endpoint_id:str}", operation_id="updateEndpoint", responses=problem_responses(400, 401, 404, 422))
    async def update(
        self, request: Request, db: NamedDependency[TenantDb], address_policy: NamedDependency[AddressPolicy],
        endpoint_id: EndpointId, data: JSONBody[EndpointUpdate],
    ) -> EndpointOut:
        """Change an endpoint; disabling it ends what still waits for it (those deliveries become dead)."""
        url = UNSET if data.url is UNSET else check_url(data.url, address_policy)
        if data.headers is not UNSET:
            check_headers(data.headers)

        def given(value: Any) -> Any:
            return None if value is UNSET else value

        async with db.transaction():
            before = await endpoint_or_404(db, endpoint_id, "lock_endpoint")
            row = await endpoint_or_404(
                db, endpoint_id, "update_endpoint",
                url=given(url),
                description=given(data.description),
                event_types=None if data.event_types is UNSET else sorted(set(data.event_types)),
                channels=None if data.channels is UNSET else sorted(set(data.channels)),
                headers=None if data.headers is UNSET else Jsonb(data.headers),
                timeout_ms=None if data.timeout_seconds is UNSET else int(data.timeout_seconds * 1000),
                enabled=given(data.enabled),
                retry_schedule=given(data.retry_schedule),
                clear_retry_schedule=data.retry_schedule is None,
                rate_limit=given(data.rate_limit),
                clear_rate_limit=data.rate_limit is None,
                max_in_flight=given(data.max_in_flight),
                clear_max_in_flight=data.max_in_flight is None,
                fifo=given(data.fifo),
                legacy_signature=given(data.legacy_signature),
            )
            changed = audited_fields(data)
            await audit(db, request, "endpoint.updated", "endpoint", endpoint_id, changed=sorted(changed), **changed)
            if row["enabled"] != before["enabled"]:
                await audit(db, request, "endpoint.enabled" if row["enabled"] else "endpoint.disabled", "endpoint",
                            endpoint_id)
            if data.enabled is False:
                await db.execute("disable_endpoints", endpoint_ids=[endpoint_id], reason="manual")
            elif data.enabled is True:
                await db.execute("release_held_deliveries", endpoint_id=endpoint_id, reason="disabled")
        return endpoint_out(row, db.settings)

    @delete("/{endpoint_id:str}", operation_id="deleteEndpoint", status_code=204, responses=problem_responses(401, 404))
    async def remove(self, request: Request, db: NamedDependency[TenantDb], endpoint_id: EndpointId) -> None:
        """Delete an endpoint; its delivery history stays readable, its pending deliveries become dead."""
        async with db.transaction():
            row = await endpoint_or_404(db, endpoint_id, "delete_endpoint")
            await audit(db, request, "endpoint.deleted", "endpoint", endpoint_id, url=row["url"])
            await db.execute("disable_endpoints", endpoint_ids=[endpoint_id], reason="deleted")
