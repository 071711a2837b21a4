"""Settings read once from DATABASE_URL and RELAY_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from relay.backoff import parse_duration, parse_schedule
from relay.urlguard import Network, parse_networks


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None


def _bounded(name: str, default: int, low: int, high: int) -> int:
    value = _int(name, default)
    if not low <= value <= high:
        raise SystemExit(f"{name} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Every knob Relay has; see the README's configuration table."""

    database_url: str | None
    home: Path
    max_payload_bytes: int = 256 * 1024
    max_batch_events: int = 1000
    max_request_bytes: int = 16 * 1024 * 1024
    retry_schedule: tuple[float, ...] = field(default_factory=tuple)
    default_timeout_seconds: float = 15.0
    response_body_limit: int = 4096
    dispatch_concurrency: int = 256
    claim_batch_size: int = 256
    poll_interval_seconds: float = 1.0
    lease_margin_seconds: float = 30.0
    endpoint_max_in_flight: int = 64
    max_lost_attempts: int = 3
    db_pool_size: int = 8
    log_format: str = "auto"
    log_level: str = "info"
    # None = not set: `relay dev` then allows loopback and private networks, the rest nothing.
    allowed_networks: tuple[Network, ...] | None = None
    circuit_failure_threshold: int = 5
    circuit_cooldown_seconds: float = 60.0
    circuit_max_cooldown_seconds: float = 600.0
    auto_disable_after_seconds: float = 5 * 86400.0
    secret_rotation_grace_seconds: float = 86400.0
    signup_enabled: bool = True
    jwt_secret: bytes | None = None  # None: a key made once and kept in the database
    access_token_ttl_seconds: float = 15 * 60.0
    refresh_token_ttl_seconds: float = 30 * 86400.0
    ingest_rate_limit: int = 1000  # events per second per API key; 0 = no limit
    ready_max_queue_lag_seconds: float = 300.0
    retention_seconds: float = 30 * 86400.0
    operator_webhook_url: str | None = None
    operator_webhook_secret: str | None = None
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    ai_model: str = "claude-haiku-4-5"
    ai_timeout_seconds: float = 20.0
    anomaly_window_seconds: float = 900.0


def _bool(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{name} must be true or false, got {raw!r}")


def _duration(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise SystemExit(f"{name}: {exc}") from None


def load_settings() -> Settings:
    """Read the environment into a Settings; bad values stop the process with a clear message."""
    home = Path(os.environ.get("RELAY_HOME") or ".relay").expanduser().resolve()
    schedule_text = os.environ.get("RELAY_RETRY_SCHEDULE") or "5s,5m,30m,2h,5h,10h,10h"
    try:
        schedule = parse_schedule(schedule_text)
    except ValueError as exc:
        raise SystemExit(f"RELAY_RETRY_SCHEDULE: {exc}") from None
    if os.environ.get("RELAY_OPERATOR_WEBHOOK_URL") and not (
        os.environ.get("RELAY_OPERATOR_WEBHOOK_SECRET", "").startswith("whsec_")
    ):
        raise SystemExit("RELAY_OPERATOR_WEBHOOK_URL needs RELAY_OPERATOR_WEBHOOK_SECRET (a whsec_… secret) to sign with")
    networks_text = os.environ.get("RELAY_ALLOWED_NETWORKS")
    try:
        networks = None if networks_text is None else parse_networks(networks_text)
    except ValueError as exc:
        raise SystemExit(f"RELAY_ALLOWED_NETWORKS: {exc}") from None
    return Settings(
        database_url=os.environ.get("DATABASE_URL") or None,
        home=home,
        max_payload_bytes=_int("RELAY_MAX_PAYLOAD_BYTES", 256 * 1024),
        max_batch_events=_int("RELAY_MAX_BATCH_EVENTS", 1000),
        max_request_bytes=_int("RELAY_MAX_REQUEST_BYTES", 16 * 1024 * 1024),
        retry_schedule=schedule,
        default_timeout_seconds=_duration("RELAY_DEFAULT_TIMEOUT", 15.0),
        response_body_limit=_int("RELAY_RESPONSE_BODY_LIMIT", 4096),
        dispatch_concurrency=_int("RELAY_DISPATCH_CONCURRENCY", 256),
        claim_batch_size=_int("RELAY_CLAIM_BATCH_SIZE", 256),
        poll_interval_seconds=min(_duration("RELAY_POLL_INTERVAL", 1.0), 1.0),
        lease_margin_seconds=_duration("RELAY_LEASE_MARGIN", 30.0),
        endpoint_max_in_flight=_bounded("RELAY_ENDPOINT_MAX_IN_FLIGHT", 64, 1, 1000),
        max_lost_attempts=_bounded("RELAY_MAX_LOST_ATTEMPTS", 3, 1, 100),
        db_pool_size=_int("RELAY_DB_POOL_SIZE", 8),
        log_format=os.environ.get("RELAY_LOG_FORMAT", "auto"),
        log_level=os.environ.get("RELAY_LOG_LEVEL", "info"),
        allowed_networks=networks,
        circuit_failure_threshold=_int("RELAY_CIRCUIT_FAILURE_THRESHOLD", 5),
        circuit_cooldown_seconds=_duration("RELAY_CIRCUIT_COOLDOWN", 60.0),
        circuit_max_cooldown_seconds=_duration("RELAY_CIRCUIT_MAX_COOLDOWN", 600.0),
        auto_disable_after_seconds=_duration("RELAY_AUTO_DISABLE_AFTER", 5 * 86400.0),
        secret_rotation_grace_seconds=_duration("RELAY_SECRET_ROTATION_GRACE", 86400.0),
        signup_enabled=_bool("RELAY_SIGNUP_ENABLED", True),
        jwt_secret=os.environ["RELAY_JWT_SECRET"].encode() if os.environ.get("RELAY_JWT_SECRET") else None,
        access_token_ttl_seconds=_duration("RELAY_ACCESS_TOKEN_TTL", 15 * 60.0),
        refresh_token_ttl_seconds=_duration("RELAY_REFRESH_TOKEN_TTL", 30 * 86400.0),
        ingest_rate_limit=_int("RELAY_INGEST_RATE_LIMIT", 1000),
        ready_max_queue_lag_seconds=_duration("RELAY_READY_MAX_QUEUE_LAG", 300.0),
        retention_seconds=_duration("RELAY_RETENTION", 30 * 86400.0),
        operator_webhook_url=os.environ.get("RELAY_OPERATOR_WEBHOOK_URL") or None,
        operator_webhook_secret=os.environ.get("RELAY_OPERATOR_WEBHOOK_SECRET") or None,
        anthropic_api_key=os.environ.get("ANTHROPIC_API_KEY") or None,
        anthropic_base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
        ai_model=os.environ.get("RELAY_AI_MODEL") or "claude-haiku-4-5",
        ai_timeout_seconds=_duration("RELAY_AI_TIMEOUT", 20.0),
        anomaly_window_seconds=_duration("RELAY_ANOMALY_WINDOW", 900.0),
    )
