"""`/v1/endpoints/{id}/…`: pause, resume, rotate the secret, test, verify, stats, recover."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody
from msgspec import Meta

from relay.api.audit_log import audit
from relay.api.endpoints import EndpointId, EndpointOut, Secret, endpoint_or_404, endpoint_out
from relay.api.errors import Problem, problem_responses
from relay.api.operations import OperationOut, queue_operation, store_operation
from relay.api.stats import HealthFigures, health_figures
from relay.db.events import insert_events, new_event
from relay.db.tenant_db import TenantDb
from relay.jobs import defer_verification
from relay.settings import Settings
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


def concurrency_of(row: dict[str, Any], settings: Settings) -> ConcurrencyOut:
    """Read an endpoint row's concurrency figures.

    The row's in_flight runs from claim to recording, so for a few milliseconds it also
    holds attempts that have already finished on the wire (a worker may reuse those
    slots before their outcome is written); what is open at the receiver never exceeds
    the limit, and neither does the figure shown.
    """
    limit = row["max_in_flight"] or settings.endpoint_max_in_flight
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
    async def pause(self, request: Request, db: NamedDependency[TenantDb], endpoint_id: EndpointId) -> EndpointOut:
        """Pause: new events still create deliveries, held unattempted until resume."""
        return endpoint_out(await _set_paused(db, request, endpoint_id, True), db.settings)

    @post("/resume", operation_id="resumeEndpoint", status_code=200, responses=problem_responses(401, 404))
    async def resume(self, request: Request, db: NamedDependency[TenantDb], endpoint_id: EndpointId) -> EndpointOut:
        """Resume: held deliveries go, oldest first."""
        return endpoint_out(await _set_paused(db, request, endpoint_id, False), db.settings)

    @post("/rotate-secret", operation_id="rotateEndpointSecret", status_code=200,
          responses=problem_responses(400, 401, 404))
    async def rotate_secret(
        self, request: Request, db: NamedDependency[TenantDb], endpoint_id: EndpointId,
        data: JSONBody[SecretRotation | None] = None,
    ) -> RotatedSecret:
        """Rotate the signing secret; during the grace period (default 24 h) deliveries carry both signatures."""
        rotation = data or SecretRotation()
        grace = rotation.grace_period_seconds
        if grace is None:
            grace = db.settings.secret_rotation_grace_seconds
        async with db.transaction():
            row = await endpoint_or_404(
                db, endpoint_id, "rotate_endpoint_secret", secret=rotation.secret or new_secret(), grace_seconds=grace
            )
            await audit(db, request, "endpoint.secret_rotated", "endpoint", endpoint_id, grace_period_seconds=grace,
                        previous_valid_until=row["previous_secret_expires_at"].isoformat())
        return RotatedSecret(key=row["secret"], previous_valid_until=row["previous_secret_expires_at"])

    @post("/test", operation_id="testEndpoint", status_code=202, responses=problem_responses(401, 404, 409))
    async def test(self, request: Request, db: NamedDependency[TenantDb], endpoint_id: EndpointId) -> TestSent:
        """Send a `relay.ping` event to this endpoint only, through the normal delivery path."""
        row = await endpoint_or_404(db, endpoint_id)
        if not row["enabled"]:
            raise Problem(409, f"Endpoint {endpoint_id!r} is disabled ({row['disabled_reason']}); enable it first.")
        if row["verification"] in ("pending", "failed"):
            raise Problem(409, f"Endpoint {endpoint_id!r} is not verified yet ({row['verification']}).")
        payload = msgspec.json.encode({"endpoint_id": endpoint_id, "message": "Test event sent by Relay."})
        ping = new_event(PING, payload, endpoint_id=endpoint_id)
        async with db.transaction():
            (accepted,) = await insert_events(db.conn, db.tenant_id, [ping])
            await audit(db, request, "endpoint.tested", "endpoint", endpoint_id, event_id=accepted.id)
        return TestSent(event_id=accepted.id, deliveries=accepted.deliveries)

    @post("/verify", operation_id="verifyEndpoint", status_code=202, responses=problem_responses(401, 404))
    async def verify(self, db: NamedDependency[TenantDb], endpoint_id: EndpointId) -> EndpointOut:
        """(Re)send the verification challenge; until it is echoed the endpoint receives no events."""
        row = await endpoint_or_404(db, endpoint_id, "set_endpoint_verification", verification="pending", error=None)
        await defer_verification(db.tenant_id, endpoint_id, db.jobs)
        return endpoint_out(row, db.settings)

    @get("/stats", operation_id="getEndpointStats", responses=problem_responses(401, 404))
    async def stats(self, db: NamedDependency[TenantDb], endpoint_id: EndpointId, state: State) -> EndpointStats:
        """Circuit state, failure clock, and today's deliveries, latency and failures for this endpoint."""
        row = await endpoint_or_404(db, endpoint_id)
        return EndpointStats(
            **await health_figures(db, endpoint_id, state.open_counts),
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
            concurrency=concurrency_of(row, db.settings),
        )

    @post("/recover", operation_id="recoverEndpoint", status_code=202, responses=problem_responses(400, 401, 404))
    async def recover(
        self, request: Request, db: NamedDependency[TenantDb], endpoint_id: EndpointId, data: JSONBody[Recovery]
    ) -> OperationOut:
        """Replay everything that died for this endpoint since a time, as a background operation."""
        await endpoint_or_404(db, endpoint_id)
        scope: dict[str, Any] = {"endpoint_id": endpoint_id, "since": data.since.isoformat()}
        if data.until:
            scope["until"] = data.until.isoformat()
        async with db.transaction():
            operation = await store_operation(db, "recover_endpoint", scope)
            await audit(db, request, "endpoint.recovered", "endpoint", endpoint_id, operation_id=operation.id,
                        filter=scope)
        return await queue_operation(db, operation)


async def _set_paused(db: TenantDb, request: Request[Any, Any, Any], endpoint_id: str, paused: bool) -> dict[str, Any]:
    async with db.transaction():
        row = await endpoint_or_404(db, endpoint_id, "set_endpoint_paused", paused=paused)
        await audit(db, request, "endpoint.paused" if paused else "endpoint.resumed", "endpoint", endpoint_id)
        if paused:
            await db.execute("hold_deliveries", endpoint_id=endpoint_id)
        else:
            await db.execute("release_held_deliveries", endpoint_id=endpoint_id, reason="pause")
            await db.execute("wake_dispatchers")
    return row
