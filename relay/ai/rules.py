"""The rule-based analyser: classify an endpoint's recent attempts and explain them, deterministically."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from relay.ai.findings import Evidence, FailureAnalysis, Pattern, PatternCount, Severity

# pattern -> (likely cause, recommended action, severity when it dominates)
_EXPLANATIONS: dict[str, tuple[str, str, Severity]] = {
    "timeout": (
        "The endpoint does not answer within its timeout: it is overloaded, or does slow work before replying.",
        "Acknowledge webhooks at once (return 2xx, then process asynchronously), or raise the endpoint's timeout.",
        "high",
    ),
    "auth": (
        "The endpoint refuses Relay's requests as unauthenticated (401/403): a credential or IP allow-list changed.",
        "Check the endpoint's expected credentials or custom headers, and that it verifies the current signing secret.",
        "high",
    ),
    "dns": ("The endpoint's host name does not resolve.", "Fix the URL's host name or its DNS record.", "critical"),
    "tls": (
        "The TLS handshake fails: an expired, self-signed or mismatched certificate, or plain HTTP on an https:// URL.",
        "Renew or fix the certificate, or correct the URL's scheme.",
        "high",
    ),
    "connection_refused": (
        "Nothing listens at the endpoint's address and port: the service is down or the port is wrong.",
        "Start the receiving service or correct the URL's port.",
        "critical",
    ),
    "network": (
        "Connections to the endpoint fail or are reset before a response.",
        "Check the receiver's network path, load balancer and connection limits.",
        "high",
    ),
    "server_error": (
        "The endpoint answers with server errors (5xx): its own code or a dependency fails.",
        "Look at the receiver's error logs for the failing requests; Relay keeps retrying meanwhile.",
        "high",
    ),
    "rate_limited": (
        "The endpoint rate-limits Relay (429).",
        "Set a rate_limit on the endpoint below what the receiver allows, or raise the receiver's limit.",
        "medium",
    ),
    "gone": (
        "The endpoint answered 410 Gone: the receiver says it no longer exists, so Relay disabled it.",
        "Delete the endpoint, or fix the receiver and re-enable it.",
        "critical",
    ),
    "payload": (
        "The endpoint rejects the payload as invalid (400/422): its expectations and the events disagree.",
        "Compare the rejected payloads with the receiver's schema; validate events with /v1/ai/validate-payload.",
        "medium",
    ),
    "not_found": ("The endpoint's path does not exist on the receiver (404).", "Correct the URL's path.", "high"),
    "redirect": (
        "The endpoint answers with a redirect, which webhooks never follow.",
        "Register the final URL (often https:// instead of http://, or a trailing slash).",
        "medium",
    ),
    "blocked": (
        "The endpoint resolves to an address Relay refuses to deliver to (private or internal network).",
        "Use a public address, or allow the network with RELAY_ALLOWED_NETWORKS if it is trusted.",
        "high",
    ),
}
_RANK: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def classify(attempt: dict[str, Any]) -> Pattern | None:
    """Return the failure pattern of one attempt (None for a success)."""
    error_class, status = attempt.get("error_class"), attempt.get("response_status")
    message = (attempt.get("error_message") or "").lower()
    if error_class is None:
        return None
    if error_class in ("timeout", "tls", "blocked", "gone", "redirect"):
        return error_class
    if error_class == "rate_limited":
        return "rate_limited"
    if error_class == "server_error":
        return "server_error"
    if error_class == "client_error":
        if status in (401, 403, 407):
            return "auth"
        if status == 404:
            return "not_found"
        return "payload"
    if any(
        word in message
        for word in (
            "name or service not known",
            "nodename nor servname",
            "no address associated",
            "temporary failure in name resolution",
            "dns",
        )
    ):
        return "dns"
    if "refused" in message or "connect call failed" in message:
        return "connection_refused"
    if "ssl" in message or "certificate" in message:
        return "tls"
    return "network"


def analyse(endpoint: dict[str, Any], attempts: list[dict[str, Any]]) -> FailureAnalysis:
    """Explain an endpoint's recent attempts (newest first) from the figures alone."""
    ordered = sorted(attempts, key=lambda a: a["started_at"])
    failures = [(a, classify(a)) for a in ordered if a.get("error_class") is not None]
    successes = [a for a in ordered if a.get("error_class") is None]
    last_success = successes[-1]["started_at"] if successes else None
    trailing = [a for a, _ in failures if last_success is None or a["started_at"] > last_success]
    durations = sorted(a["duration_ms"] for a in ordered)
    evidence = Evidence(
        attempts=len(ordered),
        failures=len(failures),
        failure_rate=round(len(failures) / len(ordered), 3) if ordered else None,
        status_mix=dict(Counter(str(a.get("response_status") or a.get("error_class")) for a in ordered)),
        p95_duration_ms=float(durations[min(len(durations) - 1, int(0.95 * len(durations)))]) if durations else None,
        timeout_ms=endpoint["timeout_ms"],
        failing_since=trailing[0]["started_at"] if trailing else None,
        last_success=last_success,
    )
    counts: dict[Pattern, list[datetime]] = {}
    for attempt, pattern in failures:
        counts.setdefault(pattern or "network", []).append(attempt["started_at"])
    patterns = sorted(
        (
            PatternCount(pattern=p, count=len(seen), first_seen=min(seen), last_seen=max(seen))
            for p, seen in counts.items()
        ),
        key=lambda pc: (-pc.count, pc.pattern),
    )
    endpoint_id = endpoint["id"]
    if not ordered:
        return FailureAnalysis(
            "rules",
            endpoint_id,
            "No delivery attempts to this endpoint yet, so there is nothing to analyse.",
            "No data.",
            "no_data",
            "Send a test event with POST /v1/endpoints/{id}/test.",
            "info",
            1.0,
            [],
            evidence,
        )
    # The pattern that explains the current run of failures, or the commonest overall.
    recent = Counter(pattern for attempt, pattern in failures if attempt in trailing) or Counter(
        p.pattern for p in patterns for _ in range(p.count)
    )
    if not failures:
        return FailureAnalysis(
            "rules",
            endpoint_id,
            f"All {len(ordered)} recent attempts succeeded (p95 {evidence.p95_duration_ms:.0f} ms).",
            "The endpoint is healthy.",
            "healthy",
            "Nothing to do.",
            "info",
            1.0,
            [],
            evidence,
        )
    most_common, hits = recent.most_common(1)[0]
    pattern = most_common or "network"
    cause, action, severity = _EXPLANATIONS.get(pattern, _EXPLANATIONS["network"])
    considered = sum(recent.values())
    if pattern == "timeout" and evidence.p95_duration_ms:
        cause += (
            f" Attempts take up to {evidence.p95_duration_ms:.0f} ms against a timeout of {endpoint['timeout_ms']} ms."
        )
    if endpoint.get("circuit_state") in ("open", "half_open"):
        cause += (
            " Relay's circuit breaker for this endpoint is open: further deliveries wait, without spending"
            " retries, until a probe succeeds."
        )
    if not endpoint.get("enabled", True):
        severity = "critical"
        action = f"The endpoint is disabled ({endpoint.get('disabled_reason')}). " + action
    if trailing and last_success is not None and evidence.failing_since:
        when = evidence.failing_since.isoformat(timespec="seconds")
        summary = (
            f"{len(trailing)} consecutive failures since {when}, mostly {pattern.replace('_', ' ')} "
            f"({hits} of {considered}); it worked before that."
        )
    elif trailing:
        summary = (
            f"Every one of the {len(trailing)} recent attempts failed, mostly {pattern.replace('_', ' ')} "
            f"({hits} of {considered}); none has succeeded in this sample."
        )
    else:
        summary = (
            f"{len(failures)} of {len(ordered)} recent attempts failed ({evidence.failure_rate:.0%}), "
            f"mostly {pattern.replace('_', ' ')}; the latest attempt succeeded."
        )
        severity = min(severity, "medium", key=lambda s: _RANK[s])
    sample = min(1.0, len(ordered) / 10)  # a handful of attempts is weaker evidence than dozens
    confidence = round((hits / considered) * (0.5 + 0.5 * sample), 2)
    return FailureAnalysis(
        "rules", endpoint_id, summary, cause, pattern, action, severity, confidence, patterns, evidence
    )
