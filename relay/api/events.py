"""`/v1/events`: accept events for fan-out (single and batch) and read them back with their deliveries."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from msgspec import Meta

from relay.api.audit_log import audit
from relay.api.auth import charge_ingest
from relay.api.deliveries import DeliveryDetail, ReplayOut, delivery_details
from relay.api.errors import Problem, field_path, problem_responses
from relay.api.pagination import Cursor, Limit, Page, page_of
from relay.db.events import Accepted, IdempotencyConflict, NewEvent, insert_events, new_event
from relay.db.group_commit import GroupCommit, Submission, Verdict
from relay.db.ratelimit import Allowance
from relay.db.tenant_db import TenantDb
from relay.delivery.replay import replay_deliveries
from relay.envelope import payload_of
from relay.states import TERMINAL

EventType = Annotated[str, Meta(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")]
Channel = Annotated[str, Meta(max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
IdempotencyKey = Annotated[str, Meta(min_length=1, max_length=255)]
EventId = Annotated[str, PathParameter(max_length=64, description="An event id (`evt_…`).")]


class EventCreate(msgspec.Struct, forbid_unknown_fields=True):
    """An event to deliver to every enabled endpoint whose filters match (or to `endpoint_id` only)."""

    type: EventType
    payload: dict[str, Any]
    idempotency_key: IdempotencyKey | None = None
    endpoint_id: Annotated[str, Meta(max_length=64)] | None = None
    channels: Annotated[list[Channel], Meta(max_length=10)] | None = None


class EventBatchCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Up to 1,000 events stored in one transaction."""

    events: Annotated[list[EventCreate], Meta(min_length=1)]


class EventAccepted(msgspec.Struct):
    """An accepted event and the number of deliveries it made."""

    id: str
    deliveries: int


class EventBatchAccepted(msgspec.Struct):
    """One answer per submitted event, in request order."""

    events: list[EventAccepted]


class EventOut(msgspec.Struct):
    """A stored event."""

    id: str
    type: str
    channels: list[str]
    timestamp: datetime
    idempotency_key: str | None
    payload: msgspec.Raw


class EventListed(EventOut):
    """A stored event in a list, with how many of its deliveries are in each state."""

    delivery_states: dict[str, int] = {}


class EventDetail(EventOut):
    """A stored event with its deliveries and their attempts."""

    deliveries: list[DeliveryDetail] = []


# Litestar validates the body against EventCreate (and documents it); the payload's exact
# bytes are then taken from the same body with this cheap second pass, since `data` must
# reach receivers byte for byte as submitted.
class _RawEvent(msgspec.Struct):
    payload: msgspec.Raw


class _RawBatch(msgspec.Struct):
    events: list[_RawEvent]


class _EventIn(msgspec.Struct, forbid_unknown_fields=True):
    """EventCreate with the payload's bytes as sent: one decoding pass validates and keeps them."""

    type: EventType
    payload: msgspec.Raw
    idempotency_key: IdempotencyKey | None = None
    endpoint_id: Annotated[str, Meta(max_length=64)] | None = None
    channels: Annotated[list[Channel], Meta(max_length=10)] | None = None


_EVENT_DECODER = msgspec.json.Decoder(_EventIn)
_AT_PATH = re.compile(r"^(.*) - at `\$(.*)`$")


def _decode_event(body: bytes, operation: str) -> _EventIn:
    """Decode and validate a single event; answer 400 as Litestar would for EventCreate, naming the field."""
    try:
        item = _EVENT_DECODER.decode(body)
    except msgspec.ValidationError as exc:
        message, path = str(exc), ""
        located = _AT_PATH.match(message)
        if located:
            message, path = located.group(1), located.group(2).removeprefix(".")
        raise Problem(400, f"Validation failed for {operation}", field=field_path(path, message),
                      message=message) from None
    except msgspec.DecodeError as exc:
        raise Problem(400, f"JSON is malformed: {str(exc).removeprefix('JSON is malformed: ')}") from None
    if not bytes(item.payload).lstrip()[:1] == b"{":  # a JSON object, as EventCreate's dict[str, Any] says
        kind = _json_kind(bytes(item.payload))
        raise Problem(400, f"Validation failed for {operation}", field="$.payload",
                      message=f"Expected `object`, got `{kind}`")
    return item


def _json_kind(raw: bytes) -> str:
    first = raw.lstrip()[:1]
    return {b"[": "array", b'"': "str", b"t": "bool", b"f": "bool", b"n": "null"}.get(first, "number")


def _new_event(item: EventCreate | _EventIn, payload: bytes, idempotency_key: str | None) -> NewEvent:
    channels = tuple(sorted(set(item.channels or ())))
    return new_event(
        item.type, payload, channels=channels, endpoint_id=item.endpoint_id, idempotency_key=idempotency_key
    )


def _limit_headers(limit: int, verdict: Verdict) -> dict[str, str]:
    """The RateLimit-* headers (and Retry-After when refused) for a group-committed event."""
    if limit <= 0 or verdict.used is None:
        return {}
    allowance = Allowance(allowed=not verdict.rate_limited, limit=limit, remaining=max(0, limit - verdict.used),
                          reset_seconds=max(1, math.ceil(verdict.resets_in)))
    return allowance.headers()


def _checked_payload(raw: msgspec.Raw, limit: int, where: str) -> bytes:
    payload = bytes(raw)
    if len(payload) > limit:
        raise Problem(413, f"The payload is {len(payload)} bytes; the limit is {limit}.", field=where)
    return payload


async def _store(db: TenantDb, events: list[NewEvent]) -> list[Accepted]:
    targets = {event.endpoint_id for event in events if event.endpoint_id}
    if targets:
        rows = await db.fetch_all("existing_endpoints", ids=list(targets))
        missing = targets - {row["id"] for row in rows}
        if missing:
            raise Problem(422, f"No endpoint {sorted(missing)[0]!r}.", field="endpoint_id")
    try:
        return await insert_events(await db.connection(), db.tenant_id, events)
    except IdempotencyConflict as exc:
        raise Problem(409, f"Idempotency key {exc.key!r} was already used with a different request.") from None


class EventController(Controller):
    """Events of the calling tenant."""

    path = "/v1/events"
    tags = ["events"]

    @post(
        "/",
        operation_id="createEvent",
        status_code=202,
        responses=problem_responses(400, 401, 409, 413, 422, 429),
    )
    async def create(
        self,
        request: Request,
        db: NamedDependency[TenantDb],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=255)] = None,
    ) -> Response[EventAccepted]:
        """Accept one event for delivery; answers 200 with the original for a repeated idempotency key."""
        # The body (documented as EventCreate, see relay/api/openapi.py) is decoded once, here:
        # validated as EventCreate is, with the payload's exact bytes kept for the receivers.
        data = _decode_event(await request.body(), "POST /v1/events")
        if idempotency_key and data.idempotency_key and idempotency_key != data.idempotency_key:
            raise Problem(
                422, "The Idempotency-Key header and the body's idempotency_key differ.", field="$.idempotency_key"
            )
        payload = _checked_payload(data.payload, db.settings.max_payload_bytes, "$.payload")
        event = _new_event(data, payload, data.idempotency_key or idempotency_key)
        # Written together with the other requests that arrive meanwhile (one statement, one
        # commit), the rate limit charged in the same statement; answered once committed.
        limit = max(0, db.principal.rate_limit or db.settings.ingest_rate_limit)
        writer: GroupCommit = request.app.state.group_commit
        verdict = await writer.submit(Submission(db.tenant_id, db.principal.subject, limit, event))
        limits = _limit_headers(limit, verdict)
        if not verdict.endpoint_known:
            raise Problem(422, f"No endpoint {event.endpoint_id!r}.", field="$.endpoint_id")
        if verdict.rate_limited:
            raise Problem(429, f"Ingest limit of {limit} events per second reached; retry after the reset.",
                          headers=limits)
        if verdict.conflict:
            raise Problem(409, f"Idempotency key {event.idempotency_key!r} was already used with a different request.")
        return Response(
            EventAccepted(id=verdict.event_id, deliveries=verdict.deliveries),
            status_code=202 if verdict.created else 200,
            headers=limits,
        )

    @post(
        "/batch",
        operation_id="createEventBatch",
        status_code=202,
        responses=problem_responses(400, 401, 409, 413, 422, 429),
    )
    async def create_batch(
        self, request: Request, db: NamedDependency[TenantDb], data: JSONBody[EventBatchCreate]
    ) -> Response[EventBatchAccepted]:
        """Accept up to 1,000 events in one transaction; answers in request order."""
        settings = db.settings
        if len(data.events) > settings.max_batch_events:
            raise Problem(422, f"A batch holds at most {settings.max_batch_events} events.", field="$.events")
        keys = [item.idempotency_key for item in data.events if item.idempotency_key]
        if len(keys) != len(set(keys)):
            raise Problem(422, "Two events in the batch share an idempotency key.", field="$.events")
        raw = msgspec.json.decode(await request.body(), type=_RawBatch)
        events = [
            _new_event(
                item,
                _checked_payload(raw_item.payload, settings.max_payload_bytes, f"$.events[{index}].payload"),
                item.idempotency_key,
            )
            for index, (item, raw_item) in enumerate(zip(data.events, raw.events, strict=True))
        ]
        limits = await charge_ingest(db, len(events))
        accepted = await _store(db, events)
        return Response(
            EventBatchAccepted(events=[EventAccepted(id=a.id, deliveries=a.deliveries) for a in accepted]),
            status_code=202,
            headers=limits,
        )

    @get("/batch", include_in_schema=False)
    async def not_an_event(self) -> None:
        """`GET /v1/events/batch` is a lookup of an event called "batch", which cannot exist (not a 405)."""
        raise Problem(404, "No event 'batch'.")

    @get("/", operation_id="listEvents", responses=problem_responses(400, 401))
    async def list(
        self,
        db: NamedDependency[TenantDb],
        limit: Limit = 50,
        cursor: Cursor = None,
        event_type: Annotated[str | None, QueryParameter(max_length=255)] = None,
        since: Annotated[datetime | None, QueryParameter(description="Created at or after (ISO 8601).")] = None,
        until: Annotated[datetime | None, QueryParameter(description="Created before (ISO 8601).")] = None,
    ) -> Page[EventListed]:
        """List events, newest first, filtered by type and time, with their deliveries counted by state."""
        rows = await db.fetch_all(
            "list_events", cursor=cursor, limit=limit + 1, event_type=event_type, since=since, until=until
        )
        return page_of(
            [EventListed(**msgspec.structs.asdict(_event_out(row)), delivery_states=row["delivery_states"])
             for row in rows],
            limit,
        )

    @get("/{event_id:str}", operation_id="getEvent", responses=problem_responses(401, 404))
    async def read(self, db: NamedDependency[TenantDb], event_id: EventId) -> EventDetail:
        """Read an event with its deliveries and every attempt."""
        event = _event_out(await _event_or_404(db, event_id))
        details = await delivery_details(db, await db.fetch_all("deliveries_of_event", event_id=event_id))
        return EventDetail(**msgspec.structs.asdict(event), deliveries=details)

    @post("/{event_id:str}/replay", operation_id="replayEvent", status_code=202,
          responses=problem_responses(401, 404, 409))
    async def replay(self, request: Request, db: NamedDependency[TenantDb], event_id: EventId) -> EventReplayed:
        """Send an event again to every endpoint it went to, where its latest delivery has finished."""
        await _event_or_404(db, event_id)
        latest = await db.fetch_all("latest_deliveries_of_event", event_id=event_id)
        finished = [row["id"] for row in latest if row["state"] in TERMINAL]
        if not finished:
            raise Problem(409, f"Event {event_id!r} has no finished delivery to replay.")
        async with db.transaction():
            made = await replay_deliveries(db.conn, db.tenant_id, finished)
            if made:  # every endpoint disabled or deleted: nothing was sent again
                await audit(db, request, "event.replayed", "event", event_id,
                            replays={m.replay_of: m.id for m in made})
        return EventReplayed(deliveries=[ReplayOut(id=m.id, replay_of=m.replay_of) for m in made])


class EventReplayed(msgspec.Struct):
    """The deliveries an event replay made."""

    deliveries: list[ReplayOut]


async def _event_or_404(db: TenantDb, event_id: str) -> dict[str, Any]:
    row = await db.fetch_one("get_event", id=event_id)
    if row is None:
        raise Problem(404, f"No event {event_id!r}.")
    return row


def _event_out(row: dict[str, Any]) -> EventOut:
    return EventOut(
        id=row["id"],
        type=row["type"],
        channels=row["channels"],
        timestamp=row["created_at"],
        idempotency_key=row["idempotency_key"],
        payload=payload_of(row["body"]),
    )
