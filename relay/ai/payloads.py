"""Payload validation: JSON Schema when the event type has one, else the shape of recent payloads."""

from __future__ import annotations

import difflib
from typing import Any, Literal

import jsonschema
import msgspec

IssueKind = Literal["schema", "missing_field", "likely_typo", "unexpected_field", "type"]
CheckedAgainst = Literal["schema", "recent_payloads", "nothing"]


class Issue(msgspec.Struct):
    """One problem found in a payload."""

    path: str
    kind: IssueKind
    message: str


class PayloadReport(msgspec.Struct):
    """Whether a payload is fit to send, and how to fix it."""

    engine: Literal["rules", "claude"]
    event_type: str
    valid: bool
    checked_against: CheckedAgainst
    issues: list[Issue]
    suggested_payload: dict[str, Any] | None
    summary: str
    fallback_reason: str | None = None


def _typo_of(key: str, known: list[str]) -> str | None:
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    return match[0] if match and match[0] != key else None


def validate_payload(
    event_type: str, payload: dict[str, Any], schema: dict[str, Any] | None, recent_keys: dict[str, float]
) -> PayloadReport:
    """Check `payload` against the event type's JSON Schema, or against keys seen in recent payloads."""
    issues: list[Issue] = []
    suggested = dict(payload)
    if schema is not None:
        checked: CheckedAgainst = "schema"
        validator = jsonschema.Draft202012Validator(schema)
        properties = list((schema.get("properties") or {}).keys())
        required = list(schema.get("required") or [])
        for error in sorted(validator.iter_errors(payload), key=lambda e: list(e.path)):
            path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
            kind: IssueKind = (
                "missing_field" if error.validator == "required" else "type" if error.validator == "type" else "schema"
            )
            issues.append(Issue(path, kind, error.message))
    else:
        checked = "recent_payloads" if recent_keys else "nothing"
        properties = list(recent_keys)
        required = [key for key, share in recent_keys.items() if share >= 0.9]
        for key in required:
            if key not in payload and not any(_typo_of(k, [key]) for k in payload):
                issues.append(
                    Issue(
                        f"$.{key}",
                        "missing_field",
                        f"'{key}' is in {recent_keys[key]:.0%} of recent {event_type} events",
                    )
                )
    for key in payload:
        if properties and key not in properties:
            typo = _typo_of(key, properties)
            if typo:
                issues.append(Issue(f"$.{key}", "likely_typo", f"'{key}' looks like a typo of '{typo}'"))
                suggested[typo] = suggested.pop(key)
            elif checked == "recent_payloads":
                issues.append(
                    Issue(f"$.{key}", "unexpected_field", f"'{key}' does not appear in recent {event_type} events")
                )
    for key in required:
        suggested.setdefault(key, None)
    valid = not [i for i in issues if i.kind in ("schema", "missing_field", "type", "likely_typo")]
    if checked == "nothing":
        summary = (
            f"No schema is registered for {event_type} and no recent events exist to compare with; "
            "the payload is valid JSON."
        )
    elif valid and not issues:
        summary = (
            f"The payload matches the {'schema' if checked == 'schema' else 'shape of recent events'} of {event_type}."
        )
    else:
        against = "schema" if checked == "schema" else "shape of recent events"
        summary = f"{len(issues)} issue(s) against the {against} of {event_type}."
    return PayloadReport("rules", event_type, valid, checked, issues, suggested if issues else None, summary)
