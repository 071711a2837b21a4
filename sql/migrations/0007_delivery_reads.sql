-- Views the queries read deliveries through, so the columns the API shows and the dead
-- letter's definition are written once.

-- A delivery as the API shows it: a held delivery's 'infinity' schedule reads as no time.
CREATE VIEW relay.delivery_reads AS
SELECT tenant_id, id, seq, event_id, endpoint_id, event_type, state, attempts, lost_attempts, dead_reason,
       nullif(next_attempt_at, 'infinity') AS next_attempt_at, last_attempt_at, last_status, last_error,
       held_by, replay_of, replayed_at, discarded_at, created_at, updated_at, completed_at
FROM relay.deliveries;

-- The dead letter: dead deliveries neither replayed nor discarded (the partial indexes
-- deliveries_dead_letter* have the same predicate).
CREATE VIEW relay.dead_letter AS
SELECT * FROM relay.delivery_reads
WHERE state = 'dead' AND replayed_at IS NULL AND discarded_at IS NULL;

-- Latency histograms add element-wise: one function for the rollup upsert, and an
-- aggregate for every query that sums rollups (metrics, stats, the anomaly baseline).
CREATE FUNCTION relay.add_buckets(total bigint[], more bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(coalesce(a, 0) + coalesce(b, 0) ORDER BY i), '{}')
    FROM unnest(total, more) WITH ORDINALITY AS x (a, b, i)
$$;
CREATE AGGREGATE relay.sum_buckets(bigint[]) (SFUNC = relay.add_buckets, STYPE = bigint[], INITCOND = '{}');
