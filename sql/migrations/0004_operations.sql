-- Operating Relay: delivery rollups (metrics, stats), an ingest counter, retention indexes,
-- and the tenant that carries operational webhooks.

-- Every event takes a number from this identity; its sequence is the all-time ingest count
-- (monotonic across processes and retention) that /metrics reports.
ALTER TABLE relay.events ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;

-- Per endpoint and hour: what the attempts of that hour did. Written by the dispatchers in
-- the same transaction as the attempts; read by /metrics and the stats endpoints, so both
-- stay fast however many attempts there are, and agree across every process. Retention
-- keeps these (they are small), so the totals never go down.
CREATE TABLE relay.delivery_rollups (
    tenant_id        text NOT NULL,
    endpoint_id      text NOT NULL,
    hour             timestamptz NOT NULL,
    attempts         bigint NOT NULL DEFAULT 0,
    succeeded        bigint NOT NULL DEFAULT 0,   -- attempts that delivered
    failed_attempts  bigint NOT NULL DEFAULT 0,   -- attempts that failed (retrying or dead)
    dead             bigint NOT NULL DEFAULT 0,   -- deliveries an attempt sent to dead
    duration_ms_sum  bigint NOT NULL DEFAULT 0,
    -- attempt durations per bucket; the upper bounds (ms) are relay/db/rollups.py BUCKETS_MS
    latency_buckets  bigint[] NOT NULL,
    PRIMARY KEY (tenant_id, endpoint_id, hour)
);
CREATE INDEX delivery_rollups_hour ON relay.delivery_rollups (hour);

-- Recent failures for the stats endpoints, and retention by age.
CREATE INDEX attempts_failures ON relay.attempts (tenant_id, started_at DESC) WHERE error_class IS NOT NULL;
CREATE INDEX attempts_started ON relay.attempts (started_at);
CREATE INDEX deliveries_completed ON relay.deliveries (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX events_created ON relay.events (created_at);
-- Per-endpoint stats: recent failures and the dead letter of one endpoint without a tenant-wide scan.
CREATE INDEX attempts_endpoint_failures ON relay.attempts (tenant_id, endpoint_id, started_at DESC)
    WHERE error_class IS NOT NULL;
DROP INDEX relay.deliveries_dead_letter;
CREATE INDEX deliveries_dead_letter ON relay.deliveries (tenant_id, endpoint_id, id)
    WHERE state = 'dead' AND replayed_at IS NULL AND discarded_at IS NULL;
CREATE INDEX deliveries_dead_letter_by_id ON relay.deliveries (tenant_id, id)
    WHERE state = 'dead' AND replayed_at IS NULL AND discarded_at IS NULL;
