-- Delivery guarantees: retry policy per endpoint and event type, circuit breaker, pause,
-- rate limit, FIFO, secret rotation, verification, replay and dead letter, bulk operations.

ALTER TABLE relay.endpoints
    ADD COLUMN retry_schedule float8[]
        CHECK (retry_schedule IS NULL OR cardinality(retry_schedule) BETWEEN 1 AND 20),
    ADD COLUMN paused boolean NOT NULL DEFAULT false,
    ADD COLUMN fifo boolean NOT NULL DEFAULT false,
    ADD COLUMN legacy_signature boolean NOT NULL DEFAULT false,
    -- Outbound rate limit: at most rate_limit claims per one-second window, counted here
    -- so that every worker shares the count. rate_last_grant is scratch space for the claim.
    ADD COLUMN rate_limit integer CHECK (rate_limit IS NULL OR rate_limit BETWEEN 1 AND 100000),
    ADD COLUMN rate_window_start timestamptz NOT NULL DEFAULT 'epoch',
    ADD COLUMN rate_window_count integer NOT NULL DEFAULT 0,
    ADD COLUMN rate_last_grant integer NOT NULL DEFAULT 0,
    -- Circuit breaker, shared by every worker. circuit_retry_at: when an open circuit lets a
    -- probe through; for a half-open circuit, when the probe's lease runs out.
    ADD COLUMN circuit_state text NOT NULL DEFAULT 'closed'
        CHECK (circuit_state IN ('closed', 'open', 'half_open')),
    ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN circuit_retry_at timestamptz,
    ADD COLUMN circuit_cooldown_seconds float8 NOT NULL DEFAULT 0,
    ADD COLUMN failing_since timestamptz,
    -- Secret rotation: the previous secret still signs until it expires.
    ADD COLUMN previous_secret text CHECK (previous_secret IS NULL OR previous_secret LIKE 'whsec_%'),
    ADD COLUMN previous_secret_expires_at timestamptz,
    ADD COLUMN verification text NOT NULL DEFAULT 'not_required'
        CHECK (verification IN ('not_required', 'pending', 'verified', 'failed')),
    ADD COLUMN verification_error text;

-- Primary keys lead with tenant_id: lookups by (tenant, id) use them directly, and a
-- tenant-distributed deployment (Citus) needs the distribution column in every key.
ALTER TABLE relay.events DROP CONSTRAINT events_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE relay.deliveries DROP CONSTRAINT deliveries_pkey, ADD PRIMARY KEY (tenant_id, id);
DROP INDEX relay.deliveries_tenant_id;  -- the new primary key covers it

-- Registered event types; a retry schedule here wins over the endpoint's and the default.
CREATE TABLE relay.event_types (
    tenant_id       text NOT NULL REFERENCES relay.tenants (id) ON DELETE CASCADE,
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    retry_schedule  float8[] CHECK (retry_schedule IS NULL OR cardinality(retry_schedule) BETWEEN 1 AND 20),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

-- A replay is a new delivery row pointing at the one it replays; the original stays as it
-- was (terminal states are final) and is marked replayed, which takes it off the dead letter.
ALTER TABLE relay.deliveries
    -- Creation order, exact even within one batch (ids only order by millisecond): FIFO
    -- and "oldest first" go by it.
    ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY,
    -- Why an open delivery is not due: its endpoint is paused, FIFO waits for an older
    -- delivery, the circuit is open, or the endpoint was disabled. Each is released by
    -- the event that ends it (resume, the older delivery finishing, the circuit closing).
    ADD COLUMN held_by text CHECK (held_by IN ('pause', 'fifo', 'circuit', 'disabled')),
    ADD COLUMN replay_of text,
    ADD COLUMN replayed_at timestamptz,
    ADD COLUMN discarded_at timestamptz,
    ADD COLUMN operation_id text;

ALTER TABLE relay.deliveries ADD CONSTRAINT deliveries_held_only_when_open
    CHECK (held_by IS NULL OR state IN ('pending', 'retrying'));

-- A bulk operation replays each dead delivery at most once, even if its job runs twice.
CREATE UNIQUE INDEX deliveries_replay_once ON relay.deliveries (tenant_id, operation_id, replay_of)
    WHERE operation_id IS NOT NULL;
CREATE INDEX deliveries_dead_letter ON relay.deliveries (tenant_id, id)
    WHERE state = 'dead' AND replayed_at IS NULL AND discarded_at IS NULL;
-- FIFO asks "is there an older open delivery for this endpoint?"
CREATE INDEX deliveries_open_by_endpoint ON relay.deliveries (tenant_id, endpoint_id, seq)
    WHERE state IN ('pending', 'retrying', 'delivering');
-- Oldest due first, and in creation order among equals (resume releases in order).
DROP INDEX relay.deliveries_due;
CREATE INDEX deliveries_due ON relay.deliveries (next_attempt_at, seq)
    WHERE state IN ('pending', 'retrying', 'delivering');

-- Bulk work requested over the API and done by a procrastinate job (replay, recover).
CREATE TABLE relay.operations (
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES relay.tenants (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('replay_dead_letter', 'recover_endpoint')),
    filter       jsonb NOT NULL,
    cutoff       timestamptz NOT NULL DEFAULT now(),  -- only what was dead by then is replayed
    status       text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    total        integer,
    replayed     integer NOT NULL DEFAULT 0,
    skipped      integer NOT NULL DEFAULT 0,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);
CREATE INDEX operations_tenant ON relay.operations (tenant_id, id);

-- How many of `wanted` due deliveries an endpoint may send now: the circuit breaker lets
-- all through when closed, one probe when its cool-down is over, none otherwise; the rate
-- limit caps that at what is left of the current one-second window.
CREATE FUNCTION relay.sendable(
    circuit_state text, circuit_retry_at timestamptz, rate_limit integer,
    rate_window_start timestamptz, rate_window_count integer, wanted integer, at timestamptz
) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN rate_limit IS NULL THEN allowed
        WHEN rate_window_start <= at - interval '1 second' THEN least(allowed, rate_limit)
        ELSE greatest(0, least(allowed, rate_limit - rate_window_count))
    END
    FROM (SELECT CASE
        WHEN circuit_state = 'closed' THEN wanted
        WHEN circuit_retry_at <= at THEN least(wanted, 1)
        ELSE 0
    END AS allowed) AS gate
$$;

-- The consecutive-failure count after a batch: a success (or a permanent answer, which
-- shows the endpoint is up) restarts the count at the failures that came after it.
CREATE FUNCTION relay.failures_after(current_failures integer, trailing_failures integer, had_success boolean)
RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN had_success THEN trailing_failures ELSE current_failures + trailing_failures END
$$;
