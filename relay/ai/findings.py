"""What an analysis says, whichever engine made it (the API answers these Structs as they are)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

Pattern = Literal[
    "timeout", "auth", "dns", "tls", "connection_refused", "network", "server_error", "rate_limited",
    "gone", "payload", "not_found", "redirect", "blocked", "healthy", "no_data",
]
Severity = Literal["info", "low", "medium", "high", "critical"]


class PatternCount(msgspec.Struct):
    """How often one failure pattern appeared in the attempts looked at."""

    pattern: Pattern
    count: int
    first_seen: datetime
    last_seen: datetime


class Evidence(msgspec.Struct):
    """The figures the analysis stands on."""

    attempts: int
    failures: int
    failure_rate: float | None
    status_mix: dict[str, int]
    p95_duration_ms: float | None
    timeout_ms: int
    failing_since: datetime | None  # the first failure after the last success
    last_success: datetime | None


class FailureAnalysis(msgspec.Struct):
    """Why an endpoint fails, in plain language."""

    engine: Literal["rules", "claude"]
    endpoint_id: str
    summary: str
    likely_cause: str
    pattern: Pattern
    recommended_action: str
    severity: Severity
    confidence: float
    patterns: list[PatternCount]
    evidence: Evidence
    fallback_reason: str | None = None
