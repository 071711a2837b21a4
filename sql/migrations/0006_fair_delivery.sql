-- Fair, polite delivery and honest attempt counting: per-endpoint in-flight limits and
-- adaptive concurrency shared by every worker, claims that share slots across endpoints
-- and tenants, a lease column of its own, and attempts Relay lost kept apart from the
-- attempts the receiver answered or failed.

ALTER TABLE relay.endpoints
    -- At most this many attempts in flight at once, across all workers; NULL = the default
    -- (RELAY_ENDPOINT_MAX_IN_FLIGHT).
    ADD COLUMN max_in_flight integer CHECK (max_in_flight IS NULL OR max_in_flight BETWEEN 1 AND 1000),
    -- Attempts claimed and not yet recorded. Claims add to it and recordings (or the lease
    -- rescue) take from it, under the endpoint's row lock, so every worker sees one count.
    ADD COLUMN in_flight integer NOT NULL DEFAULT 0 CHECK (in_flight >= 0),
    -- The adaptive in-flight level (relay/delivery/concurrency.py): starts modest, grows
    -- while answers are fast (quickly below the threshold, slowly above it), halves on
    -- timeouts and connection errors. The threshold is half the level the last
    -- congestion was seen at (NULL: none seen yet).
    ADD COLUMN concurrency_level float8 NOT NULL DEFAULT 4 CHECK (concurrency_level >= 1),
    ADD COLUMN concurrency_threshold float8;
ALTER TABLE relay.endpoints RENAME COLUMN rate_last_grant TO last_grant;

ALTER TABLE relay.deliveries
    -- When the lease of a 'delivering' row runs out (next_attempt_at keeps the schedule).
    ADD COLUMN lease_expires_at timestamptz,
    -- Attempts Relay lost (lease expired: the worker died or was killed mid-attempt). They
    -- are logged but do not count in `attempts`, the retry schedule or the endpoint's health.
    ADD COLUMN lost_attempts integer NOT NULL DEFAULT 0 CHECK (lost_attempts >= 0),
    -- Lost attempts since the last real one: the crash-loop guard's count.
    ADD COLUMN lost_in_a_row integer NOT NULL DEFAULT 0 CHECK (lost_in_a_row >= 0),
    -- Why a dead delivery is dead.
    ADD COLUMN dead_reason text CHECK (dead_reason IN
        ('permanent_failure', 'retries_exhausted', 'endpoint_disabled', 'lost_attempts'));

UPDATE relay.deliveries SET lease_expires_at = next_attempt_at WHERE state = 'delivering';
UPDATE relay.deliveries SET dead_reason = CASE
        WHEN last_error LIKE 'endpoint disabled:%%' THEN 'endpoint_disabled'
        WHEN last_status BETWEEN 400 AND 499 AND last_status NOT IN (408, 425, 429) THEN 'permanent_failure'
        ELSE 'retries_exhausted' END
WHERE state = 'dead';
ALTER TABLE relay.deliveries ADD CONSTRAINT deliveries_leased_iff_delivering
    CHECK ((state = 'delivering') = (lease_expires_at IS NOT NULL));

-- The claim walks the endpoints that have deliveries ready (one index descent each) and
-- takes each endpoint's oldest due ones: ready = open, not held (held rows wait at
-- 'infinity' until whatever holds them lets go; rows waiting for a circuit keep a time).
DROP INDEX relay.deliveries_due;
CREATE INDEX deliveries_ready ON relay.deliveries (tenant_id, endpoint_id, next_attempt_at, seq)
    WHERE state IN ('pending', 'retrying') AND next_attempt_at < 'infinity';
-- Held deliveries of an endpoint, for whatever releases them (circuit closing, resume).
CREATE INDEX deliveries_held ON relay.deliveries (tenant_id, endpoint_id, held_by) WHERE held_by IS NOT NULL;
-- Expired leases are found without looking at anything else.
CREATE INDEX deliveries_leases ON relay.deliveries (lease_expires_at) WHERE state = 'delivering';

-- Lost attempts per endpoint and hour (they are not failures of the endpoint).
ALTER TABLE relay.delivery_rollups ADD COLUMN lost_attempts bigint NOT NULL DEFAULT 0;

ALTER TABLE relay.attempts ADD COLUMN lost boolean NOT NULL DEFAULT false;
UPDATE relay.attempts SET lost = true WHERE error_class = 'lease_expired';

-- Every endpoint with ready deliveries and the due time of its oldest: a skip scan over
-- deliveries_ready, one descent per endpoint, so it costs what the number of busy
-- endpoints costs, never what the backlog behind them costs.
CREATE FUNCTION relay.ready_lanes() RETURNS TABLE (tenant_id text, endpoint_id text, first_due timestamptz)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE lanes AS (
        (SELECT d.tenant_id, d.endpoint_id, d.next_attempt_at
         FROM relay.deliveries d
         WHERE d.state IN ('pending', 'retrying') AND d.next_attempt_at < 'infinity'
         ORDER BY d.tenant_id, d.endpoint_id, d.next_attempt_at, d.seq
         LIMIT 1)
        UNION ALL
        SELECT n.tenant_id, n.endpoint_id, n.next_attempt_at
        FROM lanes l
        CROSS JOIN LATERAL (
            SELECT d.tenant_id, d.endpoint_id, d.next_attempt_at
            FROM relay.deliveries d
            WHERE d.state IN ('pending', 'retrying') AND d.next_attempt_at < 'infinity'
              AND (d.tenant_id, d.endpoint_id) > (l.tenant_id, l.endpoint_id)
            ORDER BY d.tenant_id, d.endpoint_id, d.next_attempt_at, d.seq
            LIMIT 1
        ) AS n
    )
    SELECT * FROM lanes
$$;

-- How many attempts an endpoint may have in flight now: its adaptive level, never above
-- its limit, and one at a time for FIFO.
CREATE FUNCTION relay.concurrency_cap(ep relay.endpoints, default_max integer) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN ep.fifo THEN 1
                ELSE least(floor(ep.concurrency_level)::integer, coalesce(ep.max_in_flight, default_max)) END
$$;

-- How many of `wanted` attempts an endpoint may start now: what its circuit breaker and
-- rate limit allow (relay.sendable), within its free in-flight room. `credit`: the claiming
-- worker's attempts that finished on the wire but are not recorded yet (their slots are
-- still counted in in_flight, but free at the receiver).
CREATE FUNCTION relay.claim_grant(ep relay.endpoints, wanted integer, default_max integer, at timestamptz,
                                  credit integer)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT least(
        relay.sendable(ep.circuit_state, ep.circuit_retry_at, ep.rate_limit, ep.rate_window_start,
                       ep.rate_window_count, wanted, at),
        greatest(0, relay.concurrency_cap(ep, default_max) - ep.in_flight + credit))
$$;

-- The adaptive level after a batch (relay/delivery/concurrency.py says when a batch is
-- congested and what it adds): halve on congestion, else add, always within [1, ceiling].
-- On congestion the threshold becomes the halved level as well.
CREATE FUNCTION relay.next_concurrency_level(level float8, congested boolean, increment float8, ceiling integer)
RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT least(greatest(ceiling, 1), greatest(1, CASE WHEN congested THEN level * 0.5 ELSE level + increment END))
$$;

CREATE OR REPLACE VIEW relay.delivery_log AS
SELECT a.tenant_id,
       a.started_at,
       a.event_id,
       d.event_type,
       a.endpoint_id,
       e.url AS endpoint_url,
       a.delivery_id,
       a.attempt_number,
       a.response_status,
       a.duration_ms,
       a.error_class,
       a.error_message,
       a.outcome,
       a.next_attempt_at,
       d.state AS delivery_state,
       a.lost
FROM relay.attempts a
JOIN relay.deliveries d ON d.id = a.delivery_id AND d.tenant_id = a.tenant_id
JOIN relay.endpoints e ON e.id = a.endpoint_id AND e.tenant_id = a.tenant_id;
