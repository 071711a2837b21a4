-- name: fragment_endpoint_columns
-- An endpoint as the API may show it: every column but the signing secrets, which only
-- creation and get_endpoint_secrets reveal.
id, url, description, event_types, channels, headers, enabled, disabled_reason, timeout_ms, retry_schedule,
       rate_limit, max_in_flight, fifo, legacy_signature, paused, verification, verification_error, failing_since,
       circuit_state, consecutive_failures, circuit_retry_at, circuit_cooldown_seconds, concurrency_level,
       in_flight, created_at, updated_at

-- name: insert_endpoint
INSERT INTO relay.endpoints (id, tenant_id, url, description, secret, event_types, channels, headers, enabled,
                             timeout_ms, retry_schedule, rate_limit, max_in_flight, fifo, legacy_signature,
                             verification)
VALUES (%(id)s, %(tenant_id)s, %(url)s, %(description)s, %(secret)s, %(event_types)s, %(channels)s,
        %(headers)s, %(enabled)s, %(timeout_ms)s, %(retry_schedule)s, %(rate_limit)s, %(max_in_flight)s, %(fifo)s,
        %(legacy_signature)s, %(verification)s)
-- The endpoint as the API shows it, and the secret: creation is one of the two times it is shown.
RETURNING {{fragment_endpoint_columns}}, secret;

-- name: get_endpoint
-- The whole row, signing secrets included: for the sender (verification signs its challenge).
-- The API reads get_endpoint_without_secrets.
SELECT * FROM relay.endpoints
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL;

-- name: get_endpoint_without_secrets
-- Every read of the API lists these columns: never secret or previous_secret, which only
-- get_endpoint_secrets reveals.
SELECT {{fragment_endpoint_columns}}
FROM relay.endpoints
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL;

-- name: get_endpoint_secrets
-- For GET /v1/endpoints/{id}/secret, and for scrubbing them from what is sent to Claude.
SELECT secret, previous_secret FROM relay.endpoints
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL;

-- name: list_endpoints
SELECT {{fragment_endpoint_columns}}
FROM relay.endpoints
WHERE tenant_id = %(tenant_id)s AND deleted_at IS NULL
  AND (%(cursor)s::text IS NULL OR id < %(cursor)s)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: update_endpoint
-- A NULL parameter leaves its column as it is; clear_* parameters set a column to NULL.
UPDATE relay.endpoints SET
    url = coalesce(%(url)s, url),
    description = coalesce(%(description)s, description),
    event_types = coalesce(%(event_types)s, event_types),
    channels = coalesce(%(channels)s, channels),
    headers = coalesce(%(headers)s, headers),
    timeout_ms = coalesce(%(timeout_ms)s, timeout_ms),
    retry_schedule = CASE WHEN %(clear_retry_schedule)s THEN NULL ELSE coalesce(%(retry_schedule)s, retry_schedule) END,
    rate_limit = CASE WHEN %(clear_rate_limit)s THEN NULL ELSE coalesce(%(rate_limit)s, rate_limit) END,
    max_in_flight = CASE WHEN %(clear_max_in_flight)s THEN NULL ELSE coalesce(%(max_in_flight)s, max_in_flight) END,
    -- A lower limit also caps the adaptive level at once.
    concurrency_level = least(concurrency_level, greatest(1, coalesce(%(max_in_flight)s, concurrency_level))),
    fifo = coalesce(%(fifo)s, fifo),
    legacy_signature = coalesce(%(legacy_signature)s, legacy_signature),
    enabled = coalesce(%(enabled)s, enabled),
    disabled_reason = CASE WHEN coalesce(%(enabled)s, enabled) THEN NULL
                           WHEN %(enabled)s IS NOT NULL THEN 'manual' ELSE disabled_reason END,
    -- Re-enabling starts the failure clock and the circuit afresh.
    failing_since = CASE WHEN %(enabled)s AND NOT enabled THEN NULL ELSE failing_since END,
    consecutive_failures = CASE WHEN %(enabled)s AND NOT enabled THEN 0 ELSE consecutive_failures END,
    circuit_state = CASE WHEN %(enabled)s AND NOT enabled THEN 'closed' ELSE circuit_state END,
    updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL
RETURNING {{fragment_endpoint_columns}};

-- name: lock_endpoint
-- An endpoint as it is before a change, locked until the change commits (the audit log
-- records whether the change enabled or disabled it).
SELECT id, enabled FROM relay.endpoints
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL
FOR UPDATE;

-- name: set_endpoint_paused
UPDATE relay.endpoints SET paused = %(paused)s, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL
RETURNING {{fragment_endpoint_columns}};

-- name: rotate_endpoint_secret
-- The current secret becomes the previous one and keeps signing until the grace period ends.
UPDATE relay.endpoints
SET previous_secret = secret,
    previous_secret_expires_at = now() + make_interval(secs => %(grace_seconds)s),
    secret = %(secret)s,
    updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL
RETURNING secret, previous_secret_expires_at;

-- name: set_endpoint_verification
UPDATE relay.endpoints SET verification = %(verification)s, verification_error = %(error)s, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL
RETURNING {{fragment_endpoint_columns}};

-- name: delete_endpoint
UPDATE relay.endpoints SET deleted_at = now(), enabled = false, disabled_reason = 'deleted', updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL
RETURNING id, url;

-- name: existing_endpoints
SELECT id FROM relay.endpoints
WHERE tenant_id = %(tenant_id)s AND id = ANY (%(ids)b::text[]) AND deleted_at IS NULL;
