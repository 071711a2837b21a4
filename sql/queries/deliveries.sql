-- name: claim_due_deliveries
-- Claim up to %(limit)s due deliveries, oldest due first, and decide for each whether it
-- is sent now (moved to 'delivering' under a lease), waits (circuit breaker, rate limit)
-- or is held (paused endpoint, FIFO behind an older delivery) — in one statement.
-- SKIP LOCKED lets many dispatchers claim at once. A 'delivering' row whose lease
-- (next_attempt_at) ran out belongs to a worker that died: it is claimed again, and the
-- attempt it lost is logged. Only rows with action 'send' are to be sent.
WITH due AS (
    SELECT d.id, d.seq, d.tenant_id, d.event_id, d.endpoint_id, d.event_type, d.state, d.attempts, d.last_attempt_at
    FROM relay.deliveries d
    WHERE d.state IN ('pending', 'retrying', 'delivering') AND d.next_attempt_at <= now()
    ORDER BY d.next_attempt_at, d.seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), candidates AS (
    SELECT due.*, ep.enabled, ep.paused, ep.circuit_state, ep.rate_limit,
           ep.fifo AND (
               row_number() OVER (PARTITION BY due.tenant_id, due.endpoint_id ORDER BY due.seq) > 1
               OR EXISTS (
                   SELECT 1 FROM relay.deliveries older
                   WHERE older.tenant_id = due.tenant_id AND older.endpoint_id = due.endpoint_id
                     AND older.state IN ('pending', 'retrying', 'delivering') AND older.seq < due.seq)
           ) AS fifo_blocked
    FROM due
    JOIN relay.endpoints ep ON ep.tenant_id = due.tenant_id AND ep.id = due.endpoint_id
), ranked AS (
    -- Position among the endpoint's deliveries that may go now as far as its own state goes.
    SELECT c.*,
           CASE WHEN c.enabled AND NOT c.paused AND NOT c.fifo_blocked THEN
               row_number() OVER (PARTITION BY c.tenant_id, c.endpoint_id,
                                  (c.enabled AND NOT c.paused AND NOT c.fifo_blocked) ORDER BY c.seq)
           END AS position
    FROM candidates c
), gates AS (
    -- Endpoints behind a circuit breaker or a rate limit: take what they may send now.
    -- Every expression reads ep.*, so a claimer that waited for the row lock re-reads
    -- the latest counts: two workers can never both spend the same allowance.
    UPDATE relay.endpoints ep
    SET rate_last_grant = relay.sendable(ep.circuit_state, ep.circuit_retry_at, ep.rate_limit,
                                         ep.rate_window_start, ep.rate_window_count, w.wanted, now()),
        rate_window_count = CASE
            WHEN ep.rate_limit IS NULL THEN 0
            WHEN ep.rate_window_start <= now() - interval '1 second'
                THEN relay.sendable(ep.circuit_state, ep.circuit_retry_at, ep.rate_limit,
                                    ep.rate_window_start, ep.rate_window_count, w.wanted, now())
            ELSE ep.rate_window_count + relay.sendable(ep.circuit_state, ep.circuit_retry_at, ep.rate_limit,
                                                       ep.rate_window_start, ep.rate_window_count, w.wanted, now())
        END,
        rate_window_start = CASE
            WHEN ep.rate_limit IS NOT NULL AND ep.rate_window_start <= now() - interval '1 second' THEN now()
            ELSE ep.rate_window_start END,
        circuit_state = CASE
            WHEN ep.circuit_state <> 'closed' AND ep.circuit_retry_at <= now()
                 AND relay.sendable(ep.circuit_state, ep.circuit_retry_at, ep.rate_limit,
                                    ep.rate_window_start, ep.rate_window_count, w.wanted, now()) > 0
                THEN 'half_open'
            ELSE ep.circuit_state END,
        circuit_retry_at = CASE
            WHEN ep.circuit_state <> 'closed' AND ep.circuit_retry_at <= now()
                 AND relay.sendable(ep.circuit_state, ep.circuit_retry_at, ep.rate_limit,
                                    ep.rate_window_start, ep.rate_window_count, w.wanted, now()) > 0
                THEN now() + make_interval(secs => ep.timeout_ms / 1000.0 + %(lease_margin)s)
            ELSE ep.circuit_retry_at END
    FROM (SELECT tenant_id, endpoint_id, count(*)::integer AS wanted FROM ranked
          WHERE position IS NOT NULL AND (circuit_state <> 'closed' OR rate_limit IS NOT NULL)
          GROUP BY tenant_id, endpoint_id) AS w
    WHERE ep.tenant_id = w.tenant_id AND ep.id = w.endpoint_id
    RETURNING ep.tenant_id, ep.id, ep.rate_last_grant AS granted, ep.circuit_state, ep.circuit_retry_at,
              ep.rate_limit, ep.rate_window_start
), decided AS (
    SELECT c.id, c.tenant_id, c.event_id, c.endpoint_id, c.state AS previous_state, c.attempts AS previous_attempts,
           c.last_attempt_at AS previous_attempt_at,
           CASE WHEN c.position IS NULL THEN 'hold'
                WHEN g.id IS NULL OR c.position <= g.granted THEN 'send'
                ELSE 'wait' END AS action,
           CASE WHEN NOT c.enabled THEN 'disabled'
                WHEN c.paused THEN 'pause'
                WHEN c.fifo_blocked THEN 'fifo'
                WHEN g.id IS NOT NULL AND c.position > g.granted AND g.circuit_state <> 'closed' THEN 'circuit'
           END AS held_by,
           greatest(now() + interval '20 milliseconds',
                    CASE WHEN g.circuit_state <> 'closed' THEN g.circuit_retry_at END,
                    CASE WHEN g.rate_limit IS NOT NULL THEN g.rate_window_start + interval '1 second' END) AS wait_until,
           coalesce(et.retry_schedule, ep.retry_schedule) AS retry_schedule
    FROM ranked c
    JOIN relay.endpoints ep ON ep.tenant_id = c.tenant_id AND ep.id = c.endpoint_id
    LEFT JOIN gates g ON g.tenant_id = c.tenant_id AND g.id = c.endpoint_id
    LEFT JOIN relay.event_types et ON et.tenant_id = c.tenant_id AND et.name = c.event_type
), lost AS (
    INSERT INTO relay.attempts (id, tenant_id, delivery_id, event_id, endpoint_id, attempt_number, started_at,
                                duration_ms, error_class, error_message, outcome, next_attempt_at)
    SELECT relay.new_id('att'), x.tenant_id, x.id, x.event_id, x.endpoint_id, x.previous_attempts,
           x.previous_attempt_at, (extract(epoch FROM now() - x.previous_attempt_at) * 1000)::integer,
           'lease_expired', 'the worker sending this attempt stopped before recording its outcome',
           CASE WHEN x.action = 'send' THEN 'delivering' ELSE 'retrying' END::relay.delivery_state, now()
    FROM decided x
    WHERE x.previous_state = 'delivering'
)
UPDATE relay.deliveries d
SET state = CASE WHEN x.action = 'send' THEN 'delivering'
                 WHEN d.state = 'delivering' THEN 'retrying'
                 ELSE d.state END,
    attempts = d.attempts + CASE WHEN x.action = 'send' THEN 1 ELSE 0 END,
    held_by = x.held_by,
    next_attempt_at = CASE
        WHEN x.action = 'send' THEN now() + make_interval(secs => ep.timeout_ms / 1000.0 + %(lease_margin)s)
        WHEN x.action = 'hold' THEN 'infinity'
        ELSE x.wait_until END,
    last_attempt_at = CASE WHEN x.action = 'send' THEN now() ELSE d.last_attempt_at END,
    updated_at = now()
-- Row-by-row lookups by primary key (OFFSET 0 keeps the planner from flattening them):
-- it has no statistics for the CTE, and on a young table would scan the whole tenant.
FROM decided x
CROSS JOIN LATERAL (SELECT * FROM relay.endpoints e WHERE e.tenant_id = x.tenant_id AND e.id = x.endpoint_id OFFSET 0) AS ep
CROSS JOIN LATERAL (SELECT v.body FROM relay.events v WHERE v.tenant_id = x.tenant_id AND v.id = x.event_id OFFSET 0) AS ev
WHERE d.tenant_id = x.tenant_id AND d.id = x.id
RETURNING x.action, d.id, d.tenant_id, d.event_id, d.endpoint_id, d.attempts, ep.url, ep.secret,
          CASE WHEN ep.previous_secret_expires_at > now() THEN ep.previous_secret END AS previous_secret,
          ep.legacy_signature, ep.headers, ep.timeout_ms, x.retry_schedule, ep.fifo, ev.body;

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

-- name: update_endpoint_health
-- Feed a batch's outcomes into each endpoint's circuit breaker and failure clock, and
-- let deliveries that waited for a circuit go as soon as it closes.
WITH health AS (
    SELECT *
    FROM unnest(%(tenant_ids)s::text[], %(endpoint_ids)s::text[], %(trailing_failures)s::int[],
                %(had_success)s::boolean[], %(first_failure_at)s::timestamptz[])
         AS h (tenant_id, endpoint_id, trailing_failures, had_success, first_failure_at)
), updated AS (
    UPDATE relay.endpoints ep
    SET consecutive_failures = relay.failures_after(ep.consecutive_failures, h.trailing_failures, h.had_success),
        failing_since = CASE
            WHEN h.trailing_failures = 0 THEN NULL
            WHEN h.had_success OR ep.failing_since IS NULL THEN h.first_failure_at
            ELSE ep.failing_since END,
        circuit_state = CASE
            WHEN h.trailing_failures = 0 THEN 'closed'
            WHEN ep.circuit_state = 'half_open' THEN 'open'
            WHEN ep.circuit_state = 'closed'
                 AND relay.failures_after(ep.consecutive_failures, h.trailing_failures, h.had_success) >= %(threshold)s
                THEN 'open'
            ELSE ep.circuit_state END,
        circuit_cooldown_seconds = CASE
            WHEN h.trailing_failures = 0 THEN 0
            WHEN ep.circuit_state = 'half_open'
                THEN least(%(max_cooldown)s, greatest(%(cooldown)s, ep.circuit_cooldown_seconds * 2))
            WHEN ep.circuit_state = 'closed'
                 AND relay.failures_after(ep.consecutive_failures, h.trailing_failures, h.had_success) >= %(threshold)s
                THEN %(cooldown)s
            ELSE ep.circuit_cooldown_seconds END,
        circuit_retry_at = CASE
            WHEN h.trailing_failures = 0 THEN NULL
            WHEN ep.circuit_state = 'half_open'
                THEN now() + make_interval(secs => least(%(max_cooldown)s, greatest(%(cooldown)s, ep.circuit_cooldown_seconds * 2)))
            WHEN ep.circuit_state = 'closed'
                 AND relay.failures_after(ep.consecutive_failures, h.trailing_failures, h.had_success) >= %(threshold)s
                THEN now() + make_interval(secs => %(cooldown)s)
            ELSE ep.circuit_retry_at END
    FROM health h
    WHERE ep.tenant_id = h.tenant_id AND ep.id = h.endpoint_id
    RETURNING ep.tenant_id, ep.id, ep.circuit_state
)
UPDATE relay.deliveries d
SET held_by = NULL, next_attempt_at = now(), updated_at = now()
FROM updated u
WHERE u.circuit_state = 'closed'
  AND d.tenant_id = u.tenant_id AND d.endpoint_id = u.id
  AND d.state IN ('pending', 'retrying') AND d.held_by = 'circuit';

-- name: release_fifo_heads
-- After a FIFO endpoint's delivery finished, let its next one go.
UPDATE relay.deliveries d
SET held_by = NULL, next_attempt_at = now(), updated_at = now()
FROM unnest(%(tenant_ids)s::text[], %(endpoint_ids)s::text[]) AS f (tenant_id, endpoint_id)
CROSS JOIN LATERAL (
    SELECT o.id, o.held_by FROM relay.deliveries o
    WHERE o.tenant_id = f.tenant_id AND o.endpoint_id = f.endpoint_id
      AND o.state IN ('pending', 'retrying', 'delivering')
    ORDER BY o.seq
    LIMIT 1
) AS head
WHERE d.tenant_id = f.tenant_id AND d.id = head.id AND head.held_by = 'fifo';

-- name: release_held_deliveries
-- Let deliveries held for `reason` ('pause', 'disabled') go now, oldest first.
UPDATE relay.deliveries
SET held_by = NULL, next_attempt_at = now(), updated_at = now()
WHERE tenant_id = %(tenant_id)s AND endpoint_id = %(endpoint_id)s
  AND state IN ('pending', 'retrying') AND held_by = %(reason)s;

-- name: hold_deliveries
-- Hold what waits for a paused endpoint until it is resumed.
UPDATE relay.deliveries
SET held_by = 'pause', next_attempt_at = 'infinity', updated_at = now()
WHERE tenant_id = %(tenant_id)s AND endpoint_id = %(endpoint_id)s
  AND state IN ('pending', 'retrying');

-- name: disable_endpoints
-- Disable endpoints (410 Gone, failing too long, by request) and end what still waits
-- for them: those deliveries can never be sent, so they are dead, with the reason.
WITH target AS (
    SELECT * FROM unnest(%(tenant_ids)s::text[], %(endpoint_ids)s::text[]) AS t (tenant_id, endpoint_id)
), disabled AS (
    UPDATE relay.endpoints ep
    SET enabled = false, disabled_reason = %(reason)s, updated_at = now()
    FROM target t
    WHERE ep.tenant_id = t.tenant_id AND ep.id = t.endpoint_id AND (ep.enabled OR %(reason)s = 'deleted')
    RETURNING ep.tenant_id, ep.id
), ended AS (
    UPDATE relay.deliveries d
    SET state = 'dead', next_attempt_at = NULL, held_by = NULL, completed_at = now(), updated_at = now(),
        last_error = 'endpoint disabled: ' || %(reason)s
    FROM target t
    WHERE d.tenant_id = t.tenant_id AND d.endpoint_id = t.endpoint_id AND d.state IN ('pending', 'retrying')
    RETURNING d.id
)
SELECT (SELECT count(*) FROM disabled) AS endpoints, (SELECT count(*) FROM ended) AS deliveries;

-- name: endpoints_failing_since
-- Endpoints that have failed without a break since before the cut-off (auto-disable).
SELECT tenant_id, id, url FROM relay.endpoints
WHERE enabled AND deleted_at IS NULL AND failing_since < %(cutoff)s;

-- name: list_deliveries
SELECT id, event_id, endpoint_id, event_type, state, attempts, nullif(next_attempt_at, 'infinity') AS next_attempt_at, last_attempt_at,
       last_status, last_error, held_by, replay_of, replayed_at, created_at, updated_at, completed_at
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

-- name: list_dead_letter
-- Dead deliveries not yet replayed or discarded.
SELECT id, event_id, endpoint_id, event_type, state, attempts, nullif(next_attempt_at, 'infinity') AS next_attempt_at, last_attempt_at,
       last_status, last_error, held_by, replay_of, replayed_at, created_at, updated_at, completed_at
FROM relay.deliveries
WHERE tenant_id = %(tenant_id)s
  AND state = 'dead' AND replayed_at IS NULL AND discarded_at IS NULL
  AND (%(cursor)s::text IS NULL OR id < %(cursor)s)
  AND (%(endpoint_id)s::text IS NULL OR endpoint_id = %(endpoint_id)s)
  AND (%(event_type)s::text IS NULL OR event_type = %(event_type)s)
  AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: discard_dead_delivery
UPDATE relay.deliveries SET discarded_at = now(), updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
  AND state = 'dead' AND replayed_at IS NULL AND discarded_at IS NULL
RETURNING id;

-- name: get_delivery
SELECT id, event_id, endpoint_id, event_type, state, attempts, nullif(next_attempt_at, 'infinity') AS next_attempt_at, last_attempt_at,
       last_status, last_error, held_by, replay_of, replayed_at, created_at, updated_at, completed_at
FROM relay.deliveries
WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: deliveries_of_event
SELECT id, event_id, endpoint_id, event_type, state, attempts, nullif(next_attempt_at, 'infinity') AS next_attempt_at, last_attempt_at,
       last_status, last_error, held_by, replay_of, replayed_at, created_at, updated_at, completed_at
FROM relay.deliveries
WHERE tenant_id = %(tenant_id)s AND event_id = %(event_id)s
ORDER BY seq;

-- name: replay_deliveries
-- Replay finished deliveries: a new pending delivery for each, to the same endpoint with
-- the same event; the originals are marked replayed. Endpoints that are disabled or
-- deleted are skipped. With an operation id a delivery is replayed at most once per
-- operation, however often this runs.
WITH picked AS (
    SELECT d.id, d.seq, d.tenant_id, d.event_id, d.endpoint_id, d.event_type
    FROM relay.deliveries d
    WHERE d.tenant_id = %(tenant_id)s AND d.id = ANY (%(ids)s::text[]) AND d.state IN ('succeeded', 'dead')
    FOR UPDATE
), made AS (
    INSERT INTO relay.deliveries (id, tenant_id, event_id, endpoint_id, event_type, state, held_by,
                                  next_attempt_at, replay_of, operation_id)
    SELECT relay.new_id('dlv'), p.tenant_id, p.event_id, p.endpoint_id, p.event_type, 'pending',
           CASE WHEN ep.paused THEN 'pause' END,
           CASE WHEN ep.paused THEN 'infinity'::timestamptz ELSE now() END,
           p.id, %(operation_id)s
    FROM picked p
    JOIN relay.endpoints ep ON ep.tenant_id = p.tenant_id AND ep.id = p.endpoint_id
    WHERE ep.enabled AND ep.deleted_at IS NULL
    ORDER BY p.seq
    ON CONFLICT (tenant_id, operation_id, replay_of) WHERE operation_id IS NOT NULL DO NOTHING
    RETURNING id, replay_of
), marked AS (
    UPDATE relay.deliveries d SET replayed_at = now(), updated_at = now()
    FROM made m WHERE d.tenant_id = %(tenant_id)s AND d.id = m.replay_of
), wake AS (
    SELECT pg_notify('relay_deliveries', '') FROM (SELECT 1 FROM made LIMIT 1) AS any_made
)
SELECT m.id, m.replay_of FROM made m LEFT JOIN wake ON true ORDER BY m.replay_of;

-- name: dead_letter_page
-- The next chunk of a bulk operation: dead deliveries matching its filter that were dead
-- before the operation began, after `after` in id order.
SELECT d.id
FROM relay.deliveries d
WHERE d.tenant_id = %(tenant_id)s AND d.state = 'dead' AND d.discarded_at IS NULL
  AND d.replayed_at IS NULL AND d.completed_at <= %(cutoff)s
  AND d.id > %(after)s
  AND (%(endpoint_id)s::text IS NULL OR d.endpoint_id = %(endpoint_id)s)
  AND (%(event_type)s::text IS NULL OR d.event_type = %(event_type)s)
  AND (%(since)s::timestamptz IS NULL OR d.created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR d.created_at < %(until)s)
ORDER BY d.id
LIMIT %(limit)s;

-- name: count_dead_letter
SELECT count(*)
FROM relay.deliveries d
WHERE d.tenant_id = %(tenant_id)s AND d.state = 'dead' AND d.discarded_at IS NULL
  AND d.replayed_at IS NULL AND d.completed_at <= %(cutoff)s
  AND (%(endpoint_id)s::text IS NULL OR d.endpoint_id = %(endpoint_id)s)
  AND (%(event_type)s::text IS NULL OR d.event_type = %(event_type)s)
  AND (%(since)s::timestamptz IS NULL OR d.created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR d.created_at < %(until)s);

-- name: latest_deliveries_of_event
-- The most recent delivery of an event to each endpoint (what an event replay repeats).
SELECT DISTINCT ON (endpoint_id) id, state
FROM relay.deliveries
WHERE tenant_id = %(tenant_id)s AND event_id = %(event_id)s
ORDER BY endpoint_id, id DESC;

-- name: wake_dispatchers
-- Tell every dispatcher that deliveries are due (delivered when the transaction commits).
SELECT pg_notify('relay_deliveries', '');
