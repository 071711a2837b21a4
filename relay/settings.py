"""Settings read once from DATABASE_URL and RELAY_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from relay.backoff import parse_duration, parse_schedule
from relay.urlguard import Network, parse_networks


def _whole(low: int | None = None, high: int | None = None) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise SystemExit(f"{name} must be between {low} and {high}, got {value}")
        return value

    return parse


def _duration(name: str, raw: str) -> float:
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise SystemExit(f"{name}: {exc}") from None


def _poll_interval(name: str, raw: str) -> float:
    return min(_duration(name, raw), 1.0)  # a poll is the safety net for missed notifications: at most 1 s


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{name} must be true or false, got {value!r}")


def _text(_: str, raw: str) -> str:
    return raw


def _secret_bytes(_: str, raw: str) -> bytes:
    return raw.encode()


def _schedule(name: str, raw: str) -> tuple[float, ...]:
    try:
        return parse_schedule(raw)
    except ValueError as exc:
        raise SystemExit(f"{name}: {exc}") from None


def _networks(name: str, raw: str) -> tuple[Network, ...]:
    try:
        return parse_networks(raw)
    except ValueError as exc:
        raise SystemExit(f"{name}: {exc}") from None


def env(name: str, parse: Callable[[str, str], Any], *, empty_is_a_value: bool = False) -> dict[str, Any]:
    """Field metadata: the variable a setting is read from, and how its text is parsed."""
    return {"env": name, "parse": parse, "empty_is_a_value": empty_is_a_value}


@dataclass(frozen=True)
class Settings:
    """Every knob Relay has, each with its default and variable; see the README's configuration table."""

    database_url: str | None = field(default=None, metadata=env("DATABASE_URL", _text))
    home: Path = field(default=Path(".relay"), metadata=env("RELAY_HOME", lambda _, raw: Path(raw)))
    max_payload_bytes: int = field(default=256 * 1024, metadata=env("RELAY_MAX_PAYLOAD_BYTES", _whole()))
    max_batch_events: int = field(default=1000, metadata=env("RELAY_MAX_BATCH_EVENTS", _whole()))
    max_request_bytes: int = field(default=16 * 1024 * 1024, metadata=env("RELAY_MAX_REQUEST_BYTES", _whole()))
    retry_schedule: tuple[float, ...] = field(
        default=parse_schedule("5s,5m,30m,2h,5h,10h,10h"), metadata=env("RELAY_RETRY_SCHEDULE", _schedule)
    )
    default_timeout_seconds: float = field(default=15.0, metadata=env("RELAY_DEFAULT_TIMEOUT", _duration))
    response_body_limit: int = field(default=4096, metadata=env("RELAY_RESPONSE_BODY_LIMIT", _whole()))
    dispatch_concurrency: int = field(default=256, metadata=env("RELAY_DISPATCH_CONCURRENCY", _whole(1)))
    claim_batch_size: int = field(default=256, metadata=env("RELAY_CLAIM_BATCH_SIZE", _whole(1)))
    poll_interval_seconds: float = field(default=1.0, metadata=env("RELAY_POLL_INTERVAL", _poll_interval))
    dispatch_pacing_ms: int = field(default=20, metadata=env("RELAY_DISPATCH_PACING_MS", _whole(0, 1000)))
    lease_margin_seconds: float = field(default=30.0, metadata=env("RELAY_LEASE_MARGIN", _duration))
    endpoint_max_in_flight: int = field(default=64, metadata=env("RELAY_ENDPOINT_MAX_IN_FLIGHT", _whole(1, 1000)))
    max_lost_attempts: int = field(default=3, metadata=env("RELAY_MAX_LOST_ATTEMPTS", _whole(1, 100)))
    db_pool_size: int = field(default=8, metadata=env("RELAY_DB_POOL_SIZE", _whole(1)))
    log_format: str = field(default="auto", metadata=env("RELAY_LOG_FORMAT", _text))
    log_level: str = field(default="info", metadata=env("RELAY_LOG_LEVEL", _text))
    # None = not set: `relay dev` then allows loopback and private networks, the rest nothing.
    allowed_networks: tuple[Network, ...] | None = field(
        default=None, metadata=env("RELAY_ALLOWED_NETWORKS", _networks, empty_is_a_value=True)
    )
    circuit_failure_threshold: int = field(default=5, metadata=env("RELAY_CIRCUIT_FAILURE_THRESHOLD", _whole(1)))
    circuit_cooldown_seconds: float = field(default=60.0, metadata=env("RELAY_CIRCUIT_COOLDOWN", _duration))
    circuit_max_cooldown_seconds: float = field(default=600.0, metadata=env("RELAY_CIRCUIT_MAX_COOLDOWN", _duration))
    auto_disable_after_seconds: float = field(default=5 * 86400.0, metadata=env("RELAY_AUTO_DISABLE_AFTER", _duration))
    secret_rotation_grace_seconds: float = field(
        default=86400.0, metadata=env("RELAY_SECRET_ROTATION_GRACE", _duration)
    )
    signup_enabled: bool = field(default=True, metadata=env("RELAY_SIGNUP_ENABLED", _bool))
    session_ttl_seconds: float = field(default=7 * 86400.0, metadata=env("RELAY_SESSION_TTL", _duration))
    public_url: str | None = field(default=None, metadata=env("RELAY_PUBLIC_URL", _text))  # https: Secure cookies
    # Addresses of reverse proxies whose X-Forwarded-For is believed ('*' = any); none by default,
    # so a client cannot choose the address that login throttling and the audit log see.
    trusted_proxies: str | None = field(default=None, metadata=env("RELAY_TRUSTED_PROXIES", _text))
    jwt_secret: bytes | None = field(default=None, metadata=env("RELAY_JWT_SECRET", _secret_bytes))  # None: in the db
    access_token_ttl_seconds: float = field(default=15 * 60.0, metadata=env("RELAY_ACCESS_TOKEN_TTL", _duration))
    refresh_token_ttl_seconds: float = field(default=30 * 86400.0, metadata=env("RELAY_REFRESH_TOKEN_TTL", _duration))
    # Failed logins allowed per account within the window (a client address gets 4 times as many;
    # see relay/db/throttle.py), then 429 until the block ends; each later block lasts twice as long.
    login_max_failures: int = field(default=5, metadata=env("RELAY_LOGIN_MAX_FAILURES", _whole(1, 1000)))
    login_window_seconds: float = field(default=15 * 60.0, metadata=env("RELAY_LOGIN_WINDOW", _duration))
    ingest_rate_limit: int = field(default=1000, metadata=env("RELAY_INGEST_RATE_LIMIT", _whole(0)))  # 0 = no limit
    ready_max_queue_lag_seconds: float = field(default=300.0, metadata=env("RELAY_READY_MAX_QUEUE_LAG", _duration))
    retention_seconds: float = field(default=30 * 86400.0, metadata=env("RELAY_RETENTION", _duration))
    # The audit log is kept longer than the traffic: auditors ask about last year, not last month.
    audit_retention_seconds: float = field(default=365 * 86400.0, metadata=env("RELAY_AUDIT_RETENTION", _duration))
    jobs_keep_seconds: float = field(default=7 * 86400.0, metadata=env("RELAY_JOBS_KEEP", _duration))
    operator_webhook_url: str | None = field(default=None, metadata=env("RELAY_OPERATOR_WEBHOOK_URL", _text))
    operator_webhook_secret: str | None = field(default=None, metadata=env("RELAY_OPERATOR_WEBHOOK_SECRET", _text))
    anthropic_api_key: str | None = field(default=None, metadata=env("ANTHROPIC_API_KEY", _text))
    anthropic_base_url: str | None = field(default=None, metadata=env("ANTHROPIC_BASE_URL", _text))
    ai_model: str = field(default="claude-haiku-4-5", metadata=env("RELAY_AI_MODEL", _text))
    ai_timeout_seconds: float = field(default=20.0, metadata=env("RELAY_AI_TIMEOUT", _duration))
    anomaly_window_seconds: float = field(default=900.0, metadata=env("RELAY_ANOMALY_WINDOW", _duration))


def load_settings() -> Settings:
    """Read the environment into a Settings; bad values stop the process with a clear message.

    A variable that is unset or empty leaves its setting at the default (except where an
    empty value means something: RELAY_ALLOWED_NETWORKS="" allows no extra network).
    """
    values: dict[str, Any] = {}
    for setting in fields(Settings):
        name = setting.metadata["env"]
        raw = os.environ.get(name)
        if raw or (raw is not None and setting.metadata["empty_is_a_value"]):
            values[setting.name] = setting.metadata["parse"](name, raw)
    settings = Settings(**values)
    if settings.operator_webhook_url and not (settings.operator_webhook_secret or "").startswith("whsec_"):
        raise SystemExit(
            "RELAY_OPERATOR_WEBHOOK_URL needs RELAY_OPERATOR_WEBHOOK_SECRET (a whsec_… secret) to sign with"
        )
    return Settings(**{**values, "home": settings.home.expanduser().resolve()})
