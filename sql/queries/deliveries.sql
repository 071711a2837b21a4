-- name: claim_due_deliveries
-- Move up to %(limit)s due deliveries to 'delivering' under a lease, oldest due first.
-- SKIP LOCKED lets many dispatchers claim at once without waiting on each other.
-- A 'delivering' row is due again only once its lease (next_attempt_at) has expired:
-- that is how the claims of a killed worker come back.
WITH due AS (
    SELECT id FROM relay.deliveries
    WHERE state IN ('pending', 'retrying', 'delivering') AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE relay.deliveries d
SET state = 'delivering',
    attempts = d.attempts + 1,
    last_attempt_at = now(),
    updated_at = now(),
    next_attempt_at = now() + make_interval(secs => ep.timeout_ms / 1000.0 + %(lease_margin)s)
FROM due, relay.endpoints ep, relay.events ev
WHERE d.id = due.id
  AND ep.tenant_id = d.tenant_id AND ep.id = d.endpoint_id
  AND ev.tenant_id = d.tenant_id AND ev.id = d.event_id
RETURNING d.id, d.tenant_id, d.event_id, d.endpoint_id, d.attempts,
          ep.url, ep.secret, ep.headers, ep.timeout_ms, ev.body;

-- name: record_outcomes
-- Write a batch of attempt rows and move each delivery to its outcome, in one statement.
-- The guard (still 'delivering' with the attempt number this dispatcher claimed) makes a
-- late result from a worker whose lease expired a lost race: its attempt is logged, but
-- the delivery is left to whoever holds it now.
WITH outcome AS (
    SELECT o.*,
           CASE WHEN o.delay_seconds IS NULL THEN NULL
                ELSE now() + make_interval(secs => o.delay_seconds) END AS next_attempt_at
    FROM unnest(%(delivery_ids)s::text[], %(tenant_ids)s::text[], %(event_ids)s::text[],
                %(endpoint_ids)s::text[], %(attempt_numbers)s::int[], %(states)s::relay.delivery_state[],
                %(delays)s::float8[], %(attempt_ids)s::text[], %(started_at)s::timestamptz[],
                %(durations)s::int[], %(statuses)s::int[], %(response_headers)s::text[],
                %(response_bodies)s::text[], %(error_classes)s::text[], %(error_messages)s::text[])
         AS o (delivery_id, tenant_id, event_id, endpoint_id, attempt_number, state, delay_seconds,
               attempt_id, started_at, duration_ms, status, response_headers, response_body,
               error_class, error_message)
), logged AS (
    INSERT INTO relay.attempts (id, tenant_id, delivery_id, event_id, endpoint_id, attempt_number, started_at,
                                duration_ms, response_status, response_headers, response_body, error_class,
                                error_message, outcome, next_attempt_at)
    SELECT attempt_id, tenant_id, delivery_id, event_id, endpoint_id, attempt_number, started_at,
           duration_ms, status, response_headers::jsonb, response_body, error_class,
           error_message, state, next_attempt_at
    FROM outcome
)
UPDATE relay.deliveries d
SET state = o.state,
    next_attempt_at = o.next_attempt_at,
    last_status = o.status,
    last_error = o.error_message,
    updated_at = now(),
    completed_at = CASE WHEN o.state IN ('succeeded', 'dead') THEN now() END
FROM outcome o
WHERE d.tenant_id = o.tenant_id AND d.id = o.delivery_id
  AND d.state = 'delivering' AND d.attempts = o.attempt_number
RETURNING d.id;

-- name: kill_open_deliveries_of_endpoint
-- When an endpoint is deleted or disabled, what still waits for it will never be sent.
UPDATE relay.deliveries
SET state = 'dead', next_attempt_at = NULL, completed_at = now(), updated_at = now(),
    last_error = %(reason)s
WHERE tenant_id = %(tenant_id)s AND endpoint_id = %(endpoint_id)s AND state IN ('pending', 'retrying');

-- name: list_deliveries
SELECT id, event_id, endpoint_id, event_type, state, attempts, next_attempt_at, last_attempt_at,
       last_status, last_error, created_at, updated_at, completed_at
FROM relay.deliveries
WHERE tenant_id = %(tenant_id)s
  AND (%(cursor)s::text IS NULL OR id < %(cursor)s)
  AND (%(state)s::relay.delivery_state IS NULL OR state = %(state)s::relay.delivery_state)
  AND (%(endpoint_id)s::text IS NULL OR endpoint_id = %(endpoint_id)s)
  AND (%(event_type)s::text IS NULL OR event_type = %(event_type)s)
  AND (%(event_id)s::text IS NULL OR event_id = %(event_id)s)
  AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: get_delivery
SELECT id, event_id, endpoint_id, event_type, state, attempts, next_attempt_at, last_attempt_at,
       last_status, last_error, created_at, updated_at, completed_at
FROM relay.deliveries
WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: deliveries_of_event
SELECT id, event_id, endpoint_id, event_type, state, attempts, next_attempt_at, last_attempt_at,
       last_status, last_error, created_at, updated_at, completed_at
FROM relay.deliveries
WHERE tenant_id = %(tenant_id)s AND event_id = %(event_id)s
ORDER BY id;
