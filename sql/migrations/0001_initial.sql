-- Relay's initial schema: tenants, API keys, endpoints, events, deliveries, attempts.
--
-- Every table carries tenant_id and every query filters by it, so the schema can be
-- distributed by tenant. The hot tables (events, deliveries, attempts) have no foreign
-- keys: rows are only written by Relay's own statements, which keep them consistent,
-- and it keeps them ready for time partitioning and partition-drop retention.

CREATE FUNCTION relay.new_id(prefix text) RETURNS text
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    -- Same shape as relay/ids.py: prefix, 12 hex digits of epoch ms, 20 random hex digits.
    SELECT prefix || '_'
        || lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
        || substr(md5(gen_random_uuid()::text), 1, 20)
$$;

-- Event-type filters: empty = all; exact names; 'invoice.*' = every type under invoice.
CREATE FUNCTION relay.type_matches(filters text[], event_type text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT cardinality(filters) = 0
        OR event_type = ANY (filters)
        OR EXISTS (
            SELECT 1 FROM unnest(filters) AS f
            WHERE f = '*' OR (right(f, 2) = '.*' AND starts_with(event_type, left(f, -1)))
        )
$$;

CREATE TABLE relay.tenants (
    id          text PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE relay.api_keys (
    id            text PRIMARY KEY,
    tenant_id     text NOT NULL REFERENCES relay.tenants (id) ON DELETE CASCADE,
    name          text NOT NULL DEFAULT '',
    prefix        text NOT NULL,            -- the first characters, shown in listings
    key_hash      bytea NOT NULL UNIQUE,    -- SHA-256 of the whole key; the key itself is never stored
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_tenant ON relay.api_keys (tenant_id, id);

CREATE TABLE relay.endpoints (
    id               text PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES relay.tenants (id) ON DELETE CASCADE,
    url              text NOT NULL CHECK (url ~ '^https?://'),
    description      text NOT NULL DEFAULT '',
    secret           text NOT NULL CHECK (secret LIKE 'whsec_%'),  -- read back to sign, so not hashed
    event_types      text[] NOT NULL DEFAULT '{}',
    channels         text[] NOT NULL DEFAULT '{}',
    headers          jsonb NOT NULL DEFAULT '{}',
    enabled          boolean NOT NULL DEFAULT true,
    disabled_reason  text,
    timeout_ms       integer NOT NULL DEFAULT 15000 CHECK (timeout_ms BETWEEN 100 AND 60000),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz
);
CREATE INDEX endpoints_tenant ON relay.endpoints (tenant_id, id) WHERE deleted_at IS NULL;

CREATE TABLE relay.events (
    id               text PRIMARY KEY,
    tenant_id        text NOT NULL,
    type             text NOT NULL,
    channels         text[] NOT NULL DEFAULT '{}',
    body             bytea NOT NULL,           -- the exact bytes POSTed to every endpoint
    idempotency_key  text,
    request_hash     bytea,                    -- tells a replayed request from a reused key
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX events_idempotency ON relay.events (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_tenant_created ON relay.events (tenant_id, created_at);

-- The labels and their meaning are defined in relay/states.py (a test compares them).
CREATE TYPE relay.delivery_state AS ENUM ('pending', 'delivering', 'retrying', 'succeeded', 'dead');

-- The delivery queue and retry scheduler: a row is due when next_attempt_at <= now().
-- For a 'delivering' row next_attempt_at is its lease expiry, after which any worker may claim it again.
CREATE TABLE relay.deliveries (
    id               text PRIMARY KEY,
    tenant_id        text NOT NULL,
    event_id         text NOT NULL,
    endpoint_id      text NOT NULL,
    event_type       text NOT NULL,
    state            relay.delivery_state NOT NULL DEFAULT 'pending',
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz,
    last_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    CONSTRAINT deliveries_due_iff_open
        CHECK ((state IN ('succeeded', 'dead')) = (next_attempt_at IS NULL)),
    CONSTRAINT deliveries_completed_iff_terminal
        CHECK ((state IN ('succeeded', 'dead')) = (completed_at IS NOT NULL))
);
CREATE INDEX deliveries_due ON relay.deliveries (next_attempt_at)
    WHERE state IN ('pending', 'retrying', 'delivering');
CREATE INDEX deliveries_tenant_id ON relay.deliveries (tenant_id, id);
CREATE INDEX deliveries_event ON relay.deliveries (tenant_id, event_id);
CREATE INDEX deliveries_endpoint ON relay.deliveries (tenant_id, endpoint_id, id);

CREATE TABLE relay.attempts (
    id                text PRIMARY KEY,
    tenant_id         text NOT NULL,
    delivery_id       text NOT NULL,
    event_id          text NOT NULL,
    endpoint_id       text NOT NULL,
    attempt_number    integer NOT NULL CHECK (attempt_number >= 1),
    started_at        timestamptz NOT NULL,
    duration_ms       integer NOT NULL CHECK (duration_ms >= 0),
    response_status   integer,
    response_headers  jsonb,
    response_body     text,                    -- truncated to RELAY_RESPONSE_BODY_LIMIT bytes
    error_class       text,                    -- see relay/delivery/outcome.py
    error_message     text,
    outcome           relay.delivery_state NOT NULL,  -- the state this attempt moved the delivery to
    next_attempt_at   timestamptz
);
CREATE INDEX attempts_delivery ON relay.attempts (tenant_id, delivery_id, attempt_number);
CREATE INDEX attempts_endpoint ON relay.attempts (tenant_id, endpoint_id, started_at);

-- One row per attempt with its event and endpoint, for audits with psql.
CREATE VIEW relay.delivery_log AS
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
       d.state AS delivery_state
FROM relay.attempts a
JOIN relay.deliveries d ON d.id = a.delivery_id AND d.tenant_id = a.tenant_id
JOIN relay.endpoints e ON e.id = a.endpoint_id AND e.tenant_id = a.tenant_id;
