"""`/v1/endpoints/{id}/…`: pause, resume, rotate the secret, test, verify, stats, recover (F8, F13-F15, F19, F20)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from msgspec import Meta
from psycopg import AsyncConnection

from relay.api.endpoints import EndpointId, EndpointOut, Secret, endpoint_out, not_found
from relay.api.errors import Problem, problem_responses
from relay.api.operations import OperationOut, start_operation
from relay.api.stats import HealthFigures, health_figures
from relay.db.events import NewEvent, insert_events, request_hash
from relay.db.sql import fetch_one, queries
from relay.db.tenants import Principal
from relay.envelope import build_envelope
from relay.ids import new_id
from relay.jobs import defer_verification
from relay.signing import new_secret

PING = "relay.ping"


class SecretRotation(msgspec.Struct, forbid_unknown_fields=True):
    """Rotate to a new secret; the old one keeps signing for the grace period."""

    grace_period_seconds: Annotated[float, Meta(ge=0, le=7 * 86400)] | None = None
    secret: Secret | None = None


class RotatedSecret(msgspec.Struct):
    """The new secret, and until when the previous one still signs."""

    key: str
    previous_valid_until: datetime


class TestSent(msgspec.Struct):
    """The `relay.ping` event sent to the endpoint."""

    event_id: str
    deliveries: int


class CircuitOut(msgspec.Struct):
    """The endpoint's circuit breaker."""

    state: str
    consecutive_failures: int
    retry_at: datetime | None
    cooldown_seconds: float


class ConcurrencyOut(msgspec.Struct):
    """How many attempts Relay lets be in flight to the endpoint: the adaptive level, what is in flight now
    (across all workers), and the limit the level never exceeds."""

    level: int
    in_flight: int
    max_in_flight: int


def concurrency_of(row: dict[str, Any], default_max_in_flight: int) -> ConcurrencyOut:
    """Read an endpoint row's concurrency figures.

    The row's in_flight runs from claim to recording, so for a few milliseconds it also
    holds attempts that have already finished on the wire (a worker may reuse those
    slots before their outcome is written); what is open at the receiver never exceeds
    the limit, and neither does the figure shown.
    """
    limit = row["max_in_flight"] or default_max_in_flight
    return ConcurrencyOut(level=int(row["concurrency_level"]), in_flight=min(row["in_flight"], limit),
                          max_in_flight=limit)


class EndpointStats(HealthFigures):
    """An endpoint's health: circuit, failure clock, and the delivery figures of /v1/stats for it alone."""

    endpoint_id: str = ""
    enabled: bool = True
    disabled_reason: str | None = None
    paused: bool = False
    failing_since: datetime | None = None
    circuit: CircuitOut | None = None
    concurrency: ConcurrencyOut | None = None


class Recovery(msgspec.Struct, forbid_unknown_fields=True):
    """Replay every dead delivery of the endpoint created since `since` (and before `until`)."""

    since: datetime
    until: datetime | None = None


class EndpointActionController(Controller):
    """Things done to one endpoint."""

    path = "/v1/endpoints/{endpoint_id:str}"
    tags = ["endpoints"]

    @post("/pause", operation_id="pauseEndpoint", status_code=200, responses=problem_responses(401, 404))
    async def pause(self, request: Request, principal: NamedDependency[Principal], conn: NamedDependency[AsyncConnection], endpoint_id: EndpointId) -> EndpointOut:
        """Pause: new events still create deliveries, held unattempted until resume."""
        row = await _set_paused(conn, principal.tenant_id, endpoint_id, True)
        return endpoint_out(row, request.app.state.settings.endpoint_max_in_flight)

    @post("/resume", operation_id="resumeEndpoint", status_code=200, responses=problem_responses(401, 404))
    async def resume(self, request: Request, principal: NamedDependency[Principal], conn: NamedDependency[AsyncConnection], endpoint_id: EndpointId) -> EndpointOut:
        """Resume: held deliveries go, oldest first."""
        row = await _set_paused(conn, principal.tenant_id, endpoint_id, False)
        return endpoint_out(row, request.app.state.settings.endpoint_max_in_flight)

    @post("/rotate-secret", operation_id="rotateEndpointSecret", status_code=200, responses=problem_responses(400, 401, 404))
    async def rotate_secret(
        self, request: Request, principal: NamedDependency[Principal], conn: NamedDependency[AsyncConnection],
        endpoint_id: EndpointId, data: JSONBody[SecretRotation | None] = None,
    ) -> RotatedSecret:
        """Rotate the signing secret; during the grace period (default 24 h) deliveries carry both signatures."""
        rotation = data or SecretRotation()
        grace = rotation.grace_period_seconds
        if grace is None:
            grace = request.app.state.settings.secret_rotation_grace_seconds
        row = await fetch_one(
            conn, "rotate_endpoint_secret",
            {"tenant_id": principal.tenant_id, "id": endpoint_id, "secret": rotation.secret or new_secret(), "grace_seconds": grace},
        )
        if row is None:
            raise not_found(endpoint_id)
        return RotatedSecret(key=row["secret"], previous_valid_until=row["previous_secret_expires_at"])

    @post("/test", operation_id="testEndpoint", status_code=202, responses=problem_responses(401, 404, 409))
    async def test(self, principal: NamedDependency[Principal], conn: NamedDependency[AsyncConnection], endpoint_id: EndpointId) -> TestSent:
        """Send a `relay.ping` event to this endpoint only, through the normal delivery path."""
        row = await fetch_one(conn, "get_endpoint", {"tenant_id": principal.tenant_id, "id": endpoint_id})
        if row is None:
            raise not_found(endpoint_id)
        if not row["enabled"]:
            raise Problem(409, f"Endpoint {endpoint_id!r} is disabled ({row['disabled_reason']}); enable it first.")
        if row["verification"] in ("pending", "failed"):
            raise Problem(409, f"Endpoint {endpoint_id!r} is not verified yet ({row['verification']}).")
        now = datetime.now(UTC)
        event_id = new_id("evt")
        payload = msgspec.json.encode({"endpoint_id": endpoint_id, "message": "Test event sent by Relay."})
        event = NewEvent(
            id=event_id, type=PING, channels=(), body=build_envelope(event_id, PING, now, payload),
            idempotency_key=None, endpoint_id=endpoint_id, created_at=now,
            request_hash=request_hash(PING, payload, (), endpoint_id),
        )
        (accepted,) = await insert_events(conn, principal.tenant_id, [event])
        return TestSent(event_id=accepted.id, deliveries=accepted.deliveries)

    @post("/verify", operation_id="verifyEndpoint", status_code=202, responses=problem_responses(401, 404))
    async def verify(self, request: Request, principal: NamedDependency[Principal], conn: NamedDependency[AsyncConnection], endpoint_id: EndpointId) -> EndpointOut:
        """(Re)send the verification challenge; until it is echoed the endpoint receives no events."""
        row = await fetch_one(
            conn, "set_endpoint_verification",
            {"tenant_id": principal.tenant_id, "id": endpoint_id, "verification": "pending", "error": None},
        )
        if row is None:
            raise not_found(endpoint_id)
        await defer_verification(principal.tenant_id, endpoint_id)
        return endpoint_out(row, request.app.state.settings.endpoint_max_in_flight)

    @get("/stats", operation_id="getEndpointStats", responses=problem_responses(401, 404))
    async def stats(self, request: Request, principal: NamedDependency[Principal], conn: NamedDependency[AsyncConnection], endpoint_id: EndpointId) -> EndpointStats:
        """Circuit state, failure clock, and today's deliveries, latency and failures for this endpoint."""
        row = await fetch_one(conn, "get_endpoint", {"tenant_id": principal.tenant_id, "id": endpoint_id})
        if row is None:
            raise not_found(endpoint_id)
        return EndpointStats(
            **await health_figures(conn, principal.tenant_id, endpoint_id),
            endpoint_id=endpoint_id,
            enabled=row["enabled"],
            disabled_reason=row["disabled_reason"],
            paused=row["paused"],
            failing_since=row["failing_since"],
            circuit=CircuitOut(
                state=row["circuit_state"],
                consecutive_failures=row["consecutive_failures"],
                retry_at=row["circuit_retry_at"],
                cooldown_seconds=row["circuit_cooldown_seconds"],
            ),
            concurrency=concurrency_of(row, request.app.state.settings.endpoint_max_in_flight),
        )

    @post("/recover", operation_id="recoverEndpoint", status_code=202, responses=problem_responses(400, 401, 404))
    async def recover(
        self, principal: NamedDependency[Principal], conn: NamedDependency[AsyncConnection],
        endpoint_id: EndpointId, data: JSONBody[Recovery],
    ) -> OperationOut:
        """Replay everything that died for this endpoint since a time, as a background operation."""
        if await fetch_one(conn, "get_endpoint", {"tenant_id": principal.tenant_id, "id": endpoint_id}) is None:
            raise not_found(endpoint_id)
        scope: dict[str, Any] = {"endpoint_id": endpoint_id, "since": data.since.isoformat()}
        if data.until:
            scope["until"] = data.until.isoformat()
        return await start_operation(conn, principal.tenant_id, "recover_endpoint", scope)


async def _set_paused(conn: AsyncConnection, tenant_id: str, endpoint_id: str, paused: bool) -> dict[str, Any]:
    async with conn.transaction():
        row = await fetch_one(conn, "set_endpoint_paused", {"tenant_id": tenant_id, "id": endpoint_id, "paused": paused})
        if row is None:
            raise not_found(endpoint_id)
        target = {"tenant_id": tenant_id, "endpoint_id": endpoint_id}
        if paused:
            await conn.execute(queries["hold_deliveries"], target)
        else:
            await conn.execute(queries["release_held_deliveries"], {**target, "reason": "pause"})
            await conn.execute(queries["wake_dispatchers"])
    return row
