"""`/v1/ai`: analyse an endpoint's failures, validate a payload, answer a debugging question, list alerts.

Every answer names the engine that made it: "rules" (always available, deterministic) or
"claude" (when ANTHROPIC_API_KEY is set). Claude is given the rules' findings and a compact,
scrubbed sample of attempts; any API error, timeout or malformed answer falls back to the rules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter
from msgspec import Meta

from relay.ai.claude import Claude, ClaudeUnavailable, without_query
from relay.ai.findings import FailureAnalysis, Pattern, Severity
from relay.ai.payloads import PayloadReport, validate_payload
from relay.ai.rules import analyse
from relay.api.endpoints import EndpointId, endpoint_or_404
from relay.api.errors import problem_responses
from relay.api.events import EventType
from relay.api.pagination import Cursor, Limit, Page, page_of
from relay.db.tenant_db import TenantDb
from relay.settings import Settings

SAMPLE = 50

Answer = TypeVar("Answer", bound=msgspec.Struct)

ANALYSE_SYSTEM = (
    "You explain why a webhook endpoint fails, for the developer who owns it. You get a rule-based analysis and a "
    "sample of recent delivery attempts. Answer with only a JSON object with the keys summary, likely_cause, "
    "pattern, recommended_action, severity, confidence. pattern is one of timeout, auth, dns, tls, "
    "connection_refused, network, server_error, rate_limited, gone, payload, not_found, redirect, blocked, "
    "healthy, no_data. severity is one of info, low, medium, high, critical. confidence is a number from 0 to 1. "
    "Ground every statement in the figures given."
)
PAYLOAD_SYSTEM = (
    "You review a webhook payload before it is sent. You get the issues a validator found and the payload. Answer "
    "with only a JSON object with the keys summary (one or two plain sentences) and suggested_payload (the "
    "corrected payload as an object, or null)."
)
DEBUG_SYSTEM = (
    "You help a developer debug webhook deliveries. You get their question and real figures from their account: "
    "failing endpoints with rule-based analyses. Answer with only a JSON object with the keys diagnosis (plain "
    "language, grounded in the figures) and steps (a list of short instructions)."
)


class ClaudeVerdict(msgspec.Struct):
    summary: str
    likely_cause: str
    pattern: Pattern
    recommended_action: str
    severity: Severity
    confidence: Annotated[float, Meta(ge=0, le=1)]


class ClaudePayloadNote(msgspec.Struct):
    summary: str
    suggested_payload: dict[str, Any] | None = None


class ClaudeDebug(msgspec.Struct):
    diagnosis: str
    steps: list[str]


class PayloadCheck(msgspec.Struct, forbid_unknown_fields=True):
    """A payload to check before sending it."""

    event_type: EventType
    payload: dict[str, Any]


class DebugQuestion(msgspec.Struct, forbid_unknown_fields=True):
    """A question about this tenant's deliveries."""

    question: Annotated[str, Meta(min_length=1, max_length=2000)]


class DebugAnswer(msgspec.Struct):
    """A diagnosis grounded in the tenant's recent delivery data."""

    engine: Literal["rules", "claude"]
    question: str
    diagnosis: str
    steps: list[str]
    endpoints: list[FailureAnalysis]
    fallback_reason: str | None = None


class AlertOut(msgspec.Struct):
    """An anomaly the periodic scan found for an endpoint, against its own baseline."""

    id: str
    engine: Literal["rules"]
    endpoint_id: str
    kind: str
    status: str
    severity: str
    summary: str
    evidence: dict[str, Any]
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None


def make_claude(settings: Settings) -> Claude | None:
    """Return a Claude client when ANTHROPIC_API_KEY is set."""
    if not settings.anthropic_api_key:
        return None
    return Claude(
        settings.anthropic_api_key, settings.ai_model, settings.ai_timeout_seconds, settings.anthropic_base_url
    )


def _attempt_facts(attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # An allow-list of fields: no headers (they hold signatures and credentials), bodies cut short.
    return [
        {
            "at": a["started_at"].isoformat(timespec="seconds"),
            "ms": a["duration_ms"],
            "status": a["response_status"],
            "error": a["error_class"],
            "message": (a["error_message"] or "")[:200],
            "body": (a["response_body"] or "")[:200],
        }
        for a in attempts[:20]
    ]


async def analyse_endpoint(db: TenantDb, endpoint: dict[str, Any]) -> tuple[FailureAnalysis, list[dict[str, Any]]]:
    """Analyse an endpoint's recent attempts with the rules; return the analysis and the attempts it read."""
    attempts = await db.fetch_all("recent_attempts_of_endpoint", endpoint_id=endpoint["id"], limit=SAMPLE)
    return analyse(endpoint, attempts), attempts


async def _secrets(db: TenantDb, endpoint: dict[str, Any]) -> list[str]:
    """What must never reach the model: the endpoint's signing secrets and its custom header values."""
    secrets = await db.fetch_one("get_endpoint_secrets", id=endpoint["id"]) or {}
    return [secrets.get("secret") or "", secrets.get("previous_secret") or "", *(endpoint["headers"] or {}).values()]


async def with_claude(
    claude: Claude | None, answer: Answer, ask: Callable[[Claude], Awaitable[dict[str, Any]]]
) -> Answer:
    """Return the rules' `answer` with the fields Claude's reply (`ask`) gives laid over it.

    Without Claude the rules' answer is returned as it is; when Claude fails (an API error,
    a timeout, a malformed reply), it is returned with the reason in `fallback_reason`.
    """
    if claude is None:
        return answer
    try:
        fields = await ask(claude)
    except ClaudeUnavailable as exc:
        return msgspec.structs.replace(answer, fallback_reason=str(exc))
    return msgspec.structs.replace(answer, engine="claude", **fields)


class AiController(Controller):
    """Failure intelligence."""

    path = "/v1/ai"
    tags = ["ai"]

    @post("/analyse-failure/{endpoint_id:str}", operation_id="analyseFailure", status_code=200,
          responses=problem_responses(401, 404))
    async def analyse_failure(
        self, db: NamedDependency[TenantDb], claude: NamedDependency[Claude | None], endpoint_id: EndpointId
    ) -> FailureAnalysis:
        """Explain in plain language why an endpoint fails, from its recent attempts."""
        endpoint = await endpoint_or_404(db, endpoint_id)
        rules, attempts = await analyse_endpoint(db, endpoint)
        if rules.pattern == "no_data":
            return rules  # nothing for Claude to explain
        facts = {
            "endpoint": {"url": without_query(endpoint["url"]), "timeout_ms": endpoint["timeout_ms"],
                         "enabled": endpoint["enabled"], "disabled_reason": endpoint["disabled_reason"],
                         "circuit": endpoint["circuit_state"]},
            "rule_analysis": msgspec.to_builtins(rules),
            "attempts": _attempt_facts(attempts),
        }

        async def explain(claude: Claude) -> dict[str, Any]:
            verdict = await claude.ask(ANALYSE_SYSTEM, facts, ClaudeVerdict, await _secrets(db, endpoint))
            return msgspec.structs.asdict(verdict)

        return await with_claude(claude, rules, explain)

    @post("/validate-payload", operation_id="validatePayload", status_code=200, responses=problem_responses(400, 401))
    async def validate(
        self, db: NamedDependency[TenantDb], claude: NamedDependency[Claude | None], data: JSONBody[PayloadCheck]
    ) -> PayloadReport:
        """Find structural issues, likely typos and missing fields; check the event type's JSON Schema if registered."""
        event_type = await db.fetch_one("get_event_type", name=data.event_type)
        keys = await db.fetch_all("recent_payload_keys", event_type=data.event_type)
        recent = {row["key"]: row["seen"] / row["events"] for row in keys if row["events"]}
        report = validate_payload(data.event_type, data.payload, event_type["schema"] if event_type else None, recent)

        async def review(claude: Claude) -> dict[str, Any]:
            issues = msgspec.to_builtins(report.issues)
            facts = {"event_type": data.event_type, "issues": issues, "payload": data.payload}
            note = await claude.ask(PAYLOAD_SYSTEM, facts, ClaudePayloadNote, [])
            return {"summary": note.summary, "suggested_payload": note.suggested_payload or report.suggested_payload}

        return await with_claude(claude, report, review)

    @post("/debug", operation_id="debug", status_code=200, responses=problem_responses(400, 401))
    async def debug(
        self, db: NamedDependency[TenantDb], claude: NamedDependency[Claude | None], data: JSONBody[DebugQuestion]
    ) -> DebugAnswer:
        """Answer a question about failing deliveries with a root cause and steps, from this tenant's own data."""
        failing = await db.fetch_all("failing_endpoints")
        mentioned = [f for f in failing if f["id"] in data.question or without_query(f["url"]) in data.question]
        endpoints, analyses = [], []
        for row in (mentioned or failing)[:3]:
            endpoint = await db.fetch_one("get_endpoint_without_secrets", id=row["id"])
            if endpoint is None:
                continue
            analysis, _ = await analyse_endpoint(db, endpoint)
            endpoints.append(endpoint)
            analyses.append(analysis)
        if not analyses:
            diagnosis = (
                "No endpoint of yours has failed in the last 24 hours, so the deliveries themselves look healthy."
            )
            steps = [
                "Check that the events were accepted (GET /v1/events) and that an endpoint's filters match their type.",
                "Send POST /v1/endpoints/{id}/test to see a delivery end to end.",
            ]
        else:
            worst = analyses[0]
            diagnosis = (f"{len(analyses)} endpoint(s) failing. The worst, {worst.endpoint_id}: {worst.summary} "
                         f"{worst.likely_cause}")
            steps = [f"{a.endpoint_id}: {a.recommended_action}" for a in analyses] + [
                "When fixed, replay what died: POST /v1/endpoints/{id}/recover with the time the failures began."]

        async def diagnose(claude: Claude) -> dict[str, Any]:
            facts = {"question": data.question, "failing_endpoints": [msgspec.to_builtins(a) for a in analyses]}
            secrets = [secret for endpoint in endpoints for secret in await _secrets(db, endpoint)]
            reply = await claude.ask(DEBUG_SYSTEM, facts, ClaudeDebug, secrets)
            return {"diagnosis": reply.diagnosis, "steps": reply.steps}

        return await with_claude(claude, DebugAnswer("rules", data.question, diagnosis, steps, analyses), diagnose)

    @get("/alerts", operation_id="listAlerts", responses=problem_responses(400, 401))
    async def alerts(
        self,
        db: NamedDependency[TenantDb],
        limit: Limit = 50,
        cursor: Cursor = None,
        status: Annotated[Literal["open", "resolved"] | None, QueryParameter()] = None,
    ) -> Page[AlertOut]:
        """List anomaly alerts, newest first."""
        rows = await db.fetch_all("list_alerts", status=status, cursor=cursor, limit=limit + 1)
        return page_of([AlertOut(engine="rules", **row) for row in rows], limit)
