-- name: claim_due_deliveries
-- Claim up to %(limit)s due deliveries, shared fairly between endpoints and tenants, and
-- decide for each whether it is sent now (moved to 'delivering' under a lease), waits
-- (circuit breaker, rate limit) or is held (paused or disabled endpoint, FIFO behind an
-- older delivery) — in one statement. Its cost follows the number of endpoints with
-- ready work and what it claims, never the size of the backlog behind them.
-- Fairness: each tenant gets an equal share of the round, split between its endpoints;
-- rows are taken in turns (every tenant's first row, then every tenant's second, …), so
-- a fresh event to an idle endpoint is claimed in the first round that sees it, however
-- long another endpoint's backlog is. An endpoint never has more attempts in flight than
-- its cap (relay.concurrency_cap), counted on its row across every worker: rows beyond
-- the cap stay as they are, due, with no attempt and no lease spent. The count
-- (in_flight) runs from claim to recording; the credits are this worker's attempts that
-- have finished on the wire but are not recorded yet — their slots are free at the
-- receiver, so the claim may use them (no other worker can: they are not its credit).
-- SKIP LOCKED lets many dispatchers claim at once. Only rows with action 'send' are sent.
WITH lanes AS (
    -- Who is due: every endpoint whose oldest ready delivery is due now.
    SELECT l.tenant_id, l.endpoint_id, l.first_due, l.first_seq FROM relay.ready_lanes() l WHERE l.first_due <= now()
), lane_endpoints AS (
    -- Lock those endpoints first, in one order (claims, recordings and rescues all lock
    -- endpoints in this order, so they never deadlock); locked rows are the latest
    -- versions, so two workers never both spend the same room or allowance.
    SELECT l.*, ep.fifo, ep.enabled, ep.paused, coalesce(cr.credit, 0) AS credit,
           relay.concurrency_cap(ep, %(default_max_in_flight)s) - ep.in_flight + coalesce(cr.credit, 0) AS free
    FROM lanes l
    JOIN relay.endpoints ep ON ep.tenant_id = l.tenant_id AND ep.id = l.endpoint_id
    LEFT JOIN unnest(%(credit_tenant_ids)b::text[], %(credit_endpoint_ids)b::text[], %(credits)b::int[])
        AS cr (tenant_id, endpoint_id, credit) ON cr.tenant_id = l.tenant_id AND cr.endpoint_id = l.endpoint_id
    ORDER BY ep.tenant_id, ep.id
    FOR NO KEY UPDATE OF ep
), room AS (
    -- Who may send: free in-flight room per endpoint; a paused or disabled endpoint's rows
    -- are fetched only to be held.
    SELECT l.*,
           CASE WHEN NOT l.enabled OR l.paused THEN %(limit)s ELSE l.free END AS room,
           count(*) OVER (PARTITION BY l.tenant_id) AS tenant_lanes,
           (SELECT count(DISTINCT tenant_id) FROM lanes) AS tenants
    FROM lane_endpoints l
), candidates AS (
    -- How much each endpoint gets: its share of the round (the round split equally between
    -- tenants, a tenant's part between its endpoints), never more than its room.
    SELECT r.tenant_id, r.endpoint_id, r.first_due, d.id, d.row_id, d.seq, d.next_attempt_at, d.event_id,
           d.event_type,
           r.fifo AND EXISTS (
               SELECT 1 FROM relay.deliveries older
               WHERE older.tenant_id = d.tenant_id AND older.endpoint_id = d.endpoint_id
                 AND older.state IN ('pending', 'retrying', 'delivering') AND older.seq < d.seq
           ) AS fifo_blocked
    FROM room r
    CROSS JOIN LATERAL (
        SELECT d.*, d.ctid AS row_id FROM relay.deliveries d
        WHERE d.tenant_id = r.tenant_id AND d.endpoint_id = r.endpoint_id
          AND d.state IN ('pending', 'retrying') AND d.next_attempt_at < 'infinity' AND d.next_attempt_at <= now()
          -- From the lane's first ready row, which relay.ready_lanes() found in this statement's
          -- snapshot (nothing before it is ready in that snapshot): one index descent instead of
          -- a second walk over the entries of deliveries claimed since the last vacuum.
          AND (d.next_attempt_at, d.seq) >= (r.first_due, r.first_seq)
        ORDER BY d.next_attempt_at, d.seq
        LIMIT least(r.room, ceil(%(limit)s::numeric / r.tenants / r.tenant_lanes)::integer)
        FOR UPDATE SKIP LOCKED
    ) AS d
    WHERE r.room > 0
), chosen AS (
    -- Take rows in turns: a tenant's n-th row (round-robin over its endpoints) before any
    -- tenant's (n+1)-th; the oldest due first within a turn.
    SELECT c.*, row_number() OVER (PARTITION BY c.tenant_id, c.endpoint_id ORDER BY c.next_attempt_at, c.seq)
               AS position
    FROM (
        SELECT c.*, row_number() OVER (PARTITION BY c.tenant_id
                                       ORDER BY c.lane_position, c.first_due, c.endpoint_id) AS turn
        FROM (SELECT c.*, row_number() OVER (PARTITION BY c.tenant_id, c.endpoint_id
                                             ORDER BY c.next_attempt_at, c.seq) AS lane_position
              FROM candidates c) AS c
        ORDER BY turn, next_attempt_at, seq
        LIMIT %(limit)s
    ) AS c
), grants AS (
    -- How many each endpoint sends now: its room, circuit breaker and rate limit allowing.
    UPDATE relay.endpoints ep
    SET last_grant = relay.claim_grant(ep, w.wanted, %(default_max_in_flight)s, now(), w.credit),
        in_flight = ep.in_flight + relay.claim_grant(ep, w.wanted, %(default_max_in_flight)s, now(), w.credit),
        rate_window_count = CASE
            WHEN ep.rate_limit IS NULL THEN 0
            WHEN ep.rate_window_start <= now() - interval '1 second'
                THEN relay.claim_grant(ep, w.wanted, %(default_max_in_flight)s, now(), w.credit)
            ELSE ep.rate_window_count + relay.claim_grant(ep, w.wanted, %(default_max_in_flight)s, now(), w.credit)
        END,
        rate_window_start = CASE
            WHEN ep.rate_limit IS NOT NULL AND ep.rate_window_start <= now() - interval '1 second' THEN now()
            ELSE ep.rate_window_start END,
        circuit_state = CASE
            WHEN ep.circuit_state <> 'closed' AND ep.circuit_retry_at <= now()
                 AND relay.claim_grant(ep, w.wanted, %(default_max_in_flight)s, now(), w.credit) > 0
                THEN 'half_open'
            ELSE ep.circuit_state END,
        circuit_retry_at = CASE
            WHEN ep.circuit_state <> 'closed' AND ep.circuit_retry_at <= now()
                 AND relay.claim_grant(ep, w.wanted, %(default_max_in_flight)s, now(), w.credit) > 0
                THEN now() + make_interval(secs => ep.timeout_ms / 1000.0 + %(lease_margin)s)
            ELSE ep.circuit_retry_at END
    FROM (SELECT c.tenant_id, c.endpoint_id, count(*)::integer AS wanted, min(l.credit)::integer AS credit
          FROM chosen c JOIN lane_endpoints l ON l.tenant_id = c.tenant_id AND l.endpoint_id = c.endpoint_id
          WHERE NOT c.fifo_blocked AND l.enabled AND NOT l.paused
          GROUP BY c.tenant_id, c.endpoint_id) AS w
    WHERE ep.tenant_id = w.tenant_id AND ep.id = w.endpoint_id
    RETURNING ep.tenant_id, ep.id, ep.last_grant AS granted, ep.in_flight, ep.circuit_state, ep.circuit_retry_at,
              ep.rate_limit, ep.rate_window_start
), decided AS (
    -- What becomes of each chosen row: sent, held, made to wait, or left due as it is.
    SELECT c.id, c.row_id, c.tenant_id, c.endpoint_id, c.event_id, g.in_flight,
           CASE WHEN NOT ep.enabled OR ep.paused OR c.fifo_blocked THEN 'hold'
                WHEN g.id IS NULL THEN 'skip'
                WHEN c.position <= g.granted THEN 'send'
                WHEN g.circuit_state <> 'closed' OR g.rate_limit IS NOT NULL THEN 'wait'
                ELSE 'skip' END AS action,
           CASE WHEN NOT ep.enabled THEN 'disabled'
                WHEN ep.paused THEN 'pause'
                WHEN c.fifo_blocked THEN 'fifo'
                WHEN g.circuit_state <> 'closed' AND c.position > g.granted THEN 'circuit'
           END AS held_by,
           greatest(now() + interval '20 milliseconds',
                    CASE WHEN g.circuit_state <> 'closed' THEN g.circuit_retry_at END,
                    CASE WHEN g.rate_limit IS NOT NULL THEN g.rate_window_start + interval '1 second' END) AS wait_until,
           coalesce(et.retry_schedule, ep.retry_schedule) AS retry_schedule
    FROM chosen c
    JOIN relay.endpoints ep ON ep.tenant_id = c.tenant_id AND ep.id = c.endpoint_id
    LEFT JOIN grants g ON g.tenant_id = c.tenant_id AND g.id = c.endpoint_id
    LEFT JOIN relay.event_types et ON et.tenant_id = c.tenant_id AND et.name = c.event_type
)
UPDATE relay.deliveries d
SET state = CASE WHEN x.action = 'send' THEN 'delivering' ELSE d.state END,
    attempts = d.attempts + CASE WHEN x.action = 'send' THEN 1 ELSE 0 END,
    held_by = x.held_by,
    next_attempt_at = CASE
        WHEN x.action = 'send' THEN d.next_attempt_at
        WHEN x.action = 'hold' THEN 'infinity'
        ELSE x.wait_until END,
    lease_expires_at = CASE
        WHEN x.action = 'send' THEN now() + make_interval(secs => ep.timeout_ms / 1000.0 + %(lease_margin)s) END,
    last_attempt_at = CASE WHEN x.action = 'send' THEN now() ELSE d.last_attempt_at END,
    updated_at = now()
-- Row-by-row lookups (OFFSET 0 keeps the planner from flattening them), and the claimed
-- rows by their physical address (they are locked, so it cannot change): the planner has
-- no statistics for the CTEs, and on a young table it was seen joining the deliveries by
-- tenant alone through another index, three million rows for 256 claims.
FROM decided x
CROSS JOIN LATERAL (SELECT * FROM relay.endpoints e WHERE e.tenant_id = x.tenant_id AND e.id = x.endpoint_id
                    OFFSET 0) AS ep
CROSS JOIN LATERAL (SELECT v.body FROM relay.events v WHERE v.tenant_id = x.tenant_id AND v.id = x.event_id
                    OFFSET 0) AS ev
WHERE d.ctid = x.row_id AND d.id = x.id AND x.action <> 'skip'
RETURNING x.action, d.id AS delivery_id, d.tenant_id, d.event_id, d.endpoint_id, d.attempts,
          d.attempts + d.lost_attempts AS attempt_number, x.in_flight, ep.concurrency_level,
          ep.concurrency_threshold, ep.url, ep.secret,
          CASE WHEN ep.previous_secret_expires_at > now() THEN ep.previous_secret END AS previous_secret,
          ep.legacy_signature, ep.headers, ep.timeout_ms, x.retry_schedule, ep.fifo, ev.body;

-- name: release_fifo_heads
-- A FIFO endpoint's oldest open delivery held 'fifo' has nothing before it to wait for: let
-- it go. The recording hands a FIFO endpoint's next delivery over when it records the one
-- before it; but a claim (of another worker) or an ingest running at the same moment, in its
-- own snapshot, still saw that one open and held the next behind it, after the recording had
-- looked for it and found it not held (or not there) yet. Nothing would ever have released it.
-- Each worker's poll runs this.
WITH heads AS MATERIALIZED (
    -- Each FIFO endpoint's oldest open delivery, one index descent each; then those rows by their
    -- physical address (a row changed meanwhile no longer matches it, and is left to the next poll).
    SELECT head.id, head.row_id
    FROM relay.endpoints ep
    CROSS JOIN LATERAL (
        SELECT o.id, o.ctid AS row_id, o.held_by FROM relay.deliveries o
        WHERE o.tenant_id = ep.tenant_id AND o.endpoint_id = ep.id
          AND o.state IN ('pending', 'retrying', 'delivering')
        ORDER BY o.seq
        LIMIT 1
    ) AS head
    WHERE ep.fifo AND head.held_by = 'fifo'
)
UPDATE relay.deliveries d
SET held_by = NULL, next_attempt_at = now(), updated_at = now()
FROM heads h
WHERE d.ctid = h.row_id AND d.id = h.id
  AND d.state IN ('pending', 'retrying') AND d.held_by = 'fifo'
RETURNING d.tenant_id, d.endpoint_id, d.id;

-- name: rescue_lost_attempts
-- Give back deliveries whose lease ran out: the worker sending them died or was killed,
-- so Relay lost the attempt. It is logged (lost, error class lease_expired) but does not
-- count: `attempts` goes back down, the schedule keeps its position and the delivery is
-- due again at once. After %(max_lost)s lost attempts in a row it is dead (lost_attempts):
-- a payload that crashes every worker must not cycle for ever.
WITH expired AS (
    SELECT d.tenant_id, d.id, d.event_id, d.endpoint_id, d.attempts, d.lost_attempts, d.lost_in_a_row,
           d.last_attempt_at, d.lost_in_a_row + 1 >= %(max_lost)s AS give_up
    FROM relay.deliveries d
    WHERE d.state = 'delivering' AND d.lease_expires_at <= now()
    ORDER BY d.lease_expires_at
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
), released AS (
    -- Their slots are free again (endpoints locked in one order, like the claim does).
    UPDATE relay.endpoints ep
    SET in_flight = greatest(0, ep.in_flight - r.n)
    FROM (SELECT ep.tenant_id, ep.id, x.n
          FROM (SELECT tenant_id, endpoint_id, count(*)::integer AS n FROM expired GROUP BY 1, 2) AS x
          JOIN relay.endpoints ep ON ep.tenant_id = x.tenant_id AND ep.id = x.endpoint_id
          ORDER BY ep.tenant_id, ep.id
          FOR NO KEY UPDATE OF ep) AS r
    WHERE ep.tenant_id = r.tenant_id AND ep.id = r.id
), moved AS (
    UPDATE relay.deliveries d
    SET state = (CASE WHEN x.give_up THEN 'dead' WHEN x.attempts > 1 THEN 'retrying' ELSE 'pending' END)::relay.delivery_state,
        attempts = greatest(x.attempts - 1, 0),  -- never below zero, whatever state a row was left in
        lost_attempts = x.lost_attempts + 1,
        lost_in_a_row = x.lost_in_a_row + 1,
        lease_expires_at = NULL,
        next_attempt_at = CASE WHEN x.give_up THEN NULL ELSE now() END,
        completed_at = CASE WHEN x.give_up THEN now() END,
        dead_reason = CASE WHEN x.give_up THEN 'lost_attempts' END,
        last_error = CASE WHEN x.give_up
            THEN format('Relay lost %%s attempts in a row (each worker sending it stopped before it finished); '
                        'it may be crashing the worker', x.lost_in_a_row + 1)
            ELSE d.last_error END,
        updated_at = now()
    FROM expired x
    WHERE d.tenant_id = x.tenant_id AND d.id = x.id
    RETURNING d.tenant_id, d.id, d.event_id, d.endpoint_id, d.state, d.next_attempt_at
), logged AS (
    INSERT INTO relay.attempts (id, tenant_id, delivery_id, event_id, endpoint_id, attempt_number, started_at,
                                duration_ms, error_class, error_message, outcome, next_attempt_at, lost)
    SELECT relay.new_id('att'), x.tenant_id, x.id, x.event_id, x.endpoint_id, greatest(x.attempts + x.lost_attempts, 1),
           coalesce(x.last_attempt_at, now()),
           coalesce(greatest(0, extract(epoch FROM now() - x.last_attempt_at) * 1000)::integer, 0),
           'lease_expired', 'the worker sending this attempt stopped before recording its outcome; '
           'this attempt does not count',
           m.state, m.next_attempt_at, true
    FROM expired x JOIN moved m ON m.tenant_id = x.tenant_id AND m.id = x.id
), counted AS (
    -- Counted apart from the endpoint's own figures (attempts, failures, dead), which they must not move.
    INSERT INTO relay.delivery_rollups AS r (tenant_id, endpoint_id, hour, lost_attempts, latency_buckets)
    SELECT tenant_id, endpoint_id, date_trunc('hour', now()), count(*), %(empty_buckets)b::bigint[]
    FROM moved
    GROUP BY tenant_id, endpoint_id
    ORDER BY tenant_id, endpoint_id
    ON CONFLICT (tenant_id, endpoint_id, hour) DO UPDATE SET lost_attempts = r.lost_attempts + excluded.lost_attempts
)
SELECT m.tenant_id, m.id AS delivery_id, m.event_id, m.endpoint_id, m.state FROM moved m;

-- name: record_outcomes
-- Record a batch of finished attempts in one statement: the attempt rows, each delivery's
-- new state, each endpoint's slots, concurrency level, circuit breaker and failure clock,
-- the hourly rollups, and the FIFO hand-over. One round trip, one commit.
-- The guard (still 'delivering', and still the try this dispatcher claimed: attempts +
-- lost_attempts) makes a late result from a worker whose lease expired a lost race: its
-- attempt is logged, but the delivery and its slot belong to whoever holds them now.
WITH outcome AS (
    SELECT o.*,
           CASE WHEN o.delay_seconds IS NULL THEN NULL
                ELSE now() + make_interval(secs => o.delay_seconds) END AS next_attempt_at
    FROM unnest(%(delivery_ids)b::text[], %(tenant_ids)b::text[], %(event_ids)b::text[],
                %(endpoint_ids)b::text[], %(attempt_numbers)b::int[], %(states)b::relay.delivery_state[],
                %(delays)b::float8[], %(attempt_ids)b::text[], %(started_at)b::timestamptz[],
                %(durations)b::int[], %(statuses)b::int[], %(response_headers)b::text[],
                %(response_bodies)b::text[], %(error_classes)b::text[], %(error_messages)b::text[],
                %(dead_reasons)b::text[])
         AS o (delivery_id, tenant_id, event_id, endpoint_id, attempt_number, state, delay_seconds,
               attempt_id, started_at, duration_ms, status, response_headers, response_body,
               error_class, error_message, dead_reason)
), logged AS (
    INSERT INTO relay.attempts (id, tenant_id, delivery_id, event_id, endpoint_id, attempt_number, started_at,
                                duration_ms, response_status, response_headers, response_body, error_class,
                                error_message, outcome, next_attempt_at)
    SELECT attempt_id, tenant_id, delivery_id, event_id, endpoint_id, attempt_number, started_at,
           duration_ms, status, response_headers::jsonb, response_body, error_class,
           error_message, state, next_attempt_at
    FROM outcome
), moved AS (
    UPDATE relay.deliveries d
    SET state = o.state,
        next_attempt_at = o.next_attempt_at,
        lease_expires_at = NULL,
        lost_in_a_row = 0,
        dead_reason = o.dead_reason,
        last_status = o.status,
        last_error = o.error_message,
        updated_at = now(),
        completed_at = CASE WHEN o.state IN ('succeeded', 'dead') THEN now() END
    FROM outcome o
    -- Found by primary key: the state is compared as text so that the planner cannot pick the
    -- partial index of leases (state = 'delivering') instead. It estimates that index at a
    -- handful of rows, but between two vacuums it holds an entry for every delivery claimed
    -- since, and a recording was seen reading ~12,000 of them (770 pages) to find 11 rows.
    WHERE d.tenant_id = o.tenant_id AND d.id = o.delivery_id
      AND d.state::text = 'delivering' AND d.attempts + d.lost_attempts = o.attempt_number
    RETURNING d.tenant_id, d.endpoint_id, d.id, d.state
), endpoint_batch AS (
    -- Per endpoint: the breaker's summary (judged: some attempt said something about the
    -- endpoint), the concurrency controller's adjustment, and the slots to give back.
    SELECT h.*, (SELECT count(*) FROM moved m WHERE m.tenant_id = h.tenant_id AND m.endpoint_id = h.endpoint_id)
               ::integer AS released,
           (SELECT e.circuit_state <> 'closed' FROM relay.endpoints e
            WHERE e.tenant_id = h.tenant_id AND e.id = h.endpoint_id) AS circuit_was_open
    FROM unnest(%(ep_tenant_ids)b::text[], %(ep_endpoint_ids)b::text[], %(judged)b::boolean[],
                %(trailing_failures)b::int[], %(had_success)b::boolean[], %(first_failure_at)b::timestamptz[],
                %(congested)b::boolean[], %(increments)b::float8[])
         AS h (tenant_id, endpoint_id, judged, trailing_failures, had_success, first_failure_at, congested, increment)
), endpoints_after AS (
    UPDATE relay.endpoints ep
    SET in_flight = greatest(0, ep.in_flight - h.released),
        concurrency_level = relay.next_concurrency_level(
            ep.concurrency_level, h.congested, h.increment, coalesce(ep.max_in_flight, %(default_max_in_flight)s)),
        concurrency_threshold = CASE WHEN h.congested THEN greatest(1, ep.concurrency_level * 0.5)
                                     ELSE ep.concurrency_threshold END,
        consecutive_failures = CASE WHEN NOT h.judged THEN ep.consecutive_failures
            ELSE relay.failures_after(ep.consecutive_failures, h.trailing_failures, h.had_success) END,
        failing_since = CASE
            WHEN NOT h.judged THEN ep.failing_since
            WHEN h.trailing_failures = 0 THEN NULL
            WHEN h.had_success OR ep.failing_since IS NULL THEN h.first_failure_at
            ELSE ep.failing_since END,
        circuit_state = CASE
            WHEN NOT h.judged THEN ep.circuit_state
            WHEN h.trailing_failures = 0 THEN 'closed'
            WHEN ep.circuit_state = 'half_open' THEN 'open'
            WHEN ep.circuit_state = 'closed'
                 AND relay.failures_after(ep.consecutive_failures, h.trailing_failures, h.had_success) >= %(threshold)s
                THEN 'open'
            ELSE ep.circuit_state END,
        circuit_cooldown_seconds = CASE
            WHEN NOT h.judged THEN ep.circuit_cooldown_seconds
            WHEN h.trailing_failures = 0 THEN 0
            WHEN ep.circuit_state = 'half_open'
                THEN least(%(max_cooldown)s, greatest(%(cooldown)s, ep.circuit_cooldown_seconds * 2))
            WHEN ep.circuit_state = 'closed'
                 AND relay.failures_after(ep.consecutive_failures, h.trailing_failures, h.had_success) >= %(threshold)s
                THEN %(cooldown)s
            ELSE ep.circuit_cooldown_seconds END,
        circuit_retry_at = CASE
            WHEN NOT h.judged THEN ep.circuit_retry_at
            WHEN h.trailing_failures = 0 THEN NULL
            WHEN ep.circuit_state = 'half_open'
                THEN now() + make_interval(secs => least(%(max_cooldown)s,
                                                         greatest(%(cooldown)s, ep.circuit_cooldown_seconds * 2)))
            WHEN ep.circuit_state = 'closed'
                 AND relay.failures_after(ep.consecutive_failures, h.trailing_failures, h.had_success) >= %(threshold)s
                THEN now() + make_interval(secs => %(cooldown)s)
            ELSE ep.circuit_retry_at END
    FROM (SELECT h.* FROM endpoint_batch h
          JOIN relay.endpoints e ON e.tenant_id = h.tenant_id AND e.id = h.endpoint_id
          ORDER BY e.tenant_id, e.id
          FOR NO KEY UPDATE OF e) AS h  -- locked in the claim's order, so the two never deadlock
    WHERE ep.tenant_id = h.tenant_id AND ep.id = h.endpoint_id
    RETURNING ep.tenant_id, ep.id, ep.circuit_state, h.circuit_was_open
), circuit_closed AS (
    -- Deliveries that waited for a circuit go as soon as it closes.
    UPDATE relay.deliveries d
    SET held_by = NULL, next_attempt_at = now(), updated_at = now()
    FROM endpoints_after u
    WHERE u.circuit_was_open AND u.circuit_state = 'closed'
      AND d.tenant_id = u.tenant_id AND d.endpoint_id = u.id
      AND d.state IN ('pending', 'retrying') AND d.held_by = 'circuit'
), fifo_next AS (
    -- A FIFO endpoint whose delivery finished lets its next one go (the finished one is
    -- still 'delivering' in this statement's snapshot, so it is passed over by id).
    UPDATE relay.deliveries d
    SET held_by = NULL, next_attempt_at = now(), updated_at = now()
    FROM unnest(%(fifo_tenant_ids)b::text[], %(fifo_endpoint_ids)b::text[]) AS f (tenant_id, endpoint_id)
    CROSS JOIN LATERAL (
        SELECT o.id, o.ctid AS row_id, o.held_by FROM relay.deliveries o
        WHERE o.tenant_id = f.tenant_id AND o.endpoint_id = f.endpoint_id
          AND o.state IN ('pending', 'retrying', 'delivering')
          AND o.id NOT IN (SELECT m.id FROM moved m WHERE m.state IN ('succeeded', 'dead'))
        ORDER BY o.seq
        LIMIT 1
    ) AS head
    WHERE d.tenant_id = f.tenant_id AND d.id = head.id AND head.held_by = 'fifo'
), rolled_up AS (
    INSERT INTO relay.delivery_rollups AS r (tenant_id, endpoint_id, hour, attempts, succeeded, failed_attempts, dead,
                                             duration_ms_sum, latency_buckets)
    SELECT t.tenant_id, t.endpoint_id, t.hour, t.attempts, t.succeeded, t.failed_attempts, t.dead, t.duration_sum,
           ARRAY(SELECT (value)::bigint FROM jsonb_array_elements_text(t.buckets::jsonb))
    FROM unnest(%(rollup_tenant_ids)b::text[], %(rollup_endpoint_ids)b::text[], %(hours)b::timestamptz[],
                %(attempts)b::bigint[], %(succeeded)b::bigint[], %(failed_attempts)b::bigint[], %(dead)b::bigint[],
                %(duration_sums)b::bigint[], %(buckets)b::text[])
         AS t (tenant_id, endpoint_id, hour, attempts, succeeded, failed_attempts, dead, duration_sum, buckets)
    ORDER BY t.tenant_id, t.endpoint_id, t.hour  -- a fixed order, so two workers never deadlock
    ON CONFLICT (tenant_id, endpoint_id, hour) DO UPDATE SET
        attempts = r.attempts + excluded.attempts,
        succeeded = r.succeeded + excluded.succeeded,
        failed_attempts = r.failed_attempts + excluded.failed_attempts,
        dead = r.dead + excluded.dead,
        duration_ms_sum = r.duration_ms_sum + excluded.duration_ms_sum,
        latency_buckets = relay.add_buckets(r.latency_buckets, excluded.latency_buckets)
)
SELECT count(*) AS recorded FROM moved;

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
    SELECT * FROM unnest(%(tenant_ids)b::text[], %(endpoint_ids)b::text[]) AS t (tenant_id, endpoint_id)
), disabled AS (
    UPDATE relay.endpoints ep
    SET enabled = false, disabled_reason = %(reason)s, updated_at = now()
    FROM target t
    WHERE ep.tenant_id = t.tenant_id AND ep.id = t.endpoint_id AND (ep.enabled OR %(reason)s = 'deleted')
    RETURNING ep.tenant_id, ep.id
), ended AS (
    UPDATE relay.deliveries d
    SET state = 'dead', next_attempt_at = NULL, held_by = NULL, completed_at = now(), updated_at = now(),
        dead_reason = 'endpoint_disabled', last_error = 'endpoint disabled: ' || %(reason)s
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
SELECT * FROM relay.delivery_reads
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
SELECT * FROM relay.dead_letter
WHERE tenant_id = %(tenant_id)s
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
SELECT * FROM relay.delivery_reads
WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: deliveries_of_event
SELECT * FROM relay.delivery_reads
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
    WHERE d.tenant_id = %(tenant_id)s AND d.id = ANY (%(ids)b::text[]) AND d.state IN ('succeeded', 'dead')
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
FROM relay.dead_letter d
WHERE d.tenant_id = %(tenant_id)s AND d.completed_at <= %(cutoff)s
  AND d.id > %(after)s
  AND (%(endpoint_id)s::text IS NULL OR d.endpoint_id = %(endpoint_id)s)
  AND (%(event_type)s::text IS NULL OR d.event_type = %(event_type)s)
  AND (%(since)s::timestamptz IS NULL OR d.created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR d.created_at < %(until)s)
ORDER BY d.id
LIMIT %(limit)s;

-- name: count_dead_letter
SELECT count(*) AS total
FROM relay.dead_letter d
WHERE d.tenant_id = %(tenant_id)s AND d.completed_at <= %(cutoff)s
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

-- name: queue_lag
-- Age of the oldest due delivery (0 when none is waiting): the readiness check's figure.
SELECT coalesce(extract(epoch FROM now() - min(first_due)), 0) AS queue_lag_seconds
FROM relay.ready_lanes()
WHERE first_due <= now();
