-- name: add_rollups
-- Add a batch's attempts to the endpoint-hour rollups (bucket arrays add element-wise).
INSERT INTO relay.delivery_rollups AS r (tenant_id, endpoint_id, hour, attempts, succeeded, failed_attempts, dead,
                                         duration_ms_sum, latency_buckets)
SELECT t.tenant_id, t.endpoint_id, t.hour, t.attempts, t.succeeded, t.failed_attempts, t.dead, t.duration_sum,
       ARRAY(SELECT (value)::bigint FROM jsonb_array_elements_text(t.buckets::jsonb))
FROM unnest(%(tenant_ids)s::text[], %(endpoint_ids)s::text[], %(hours)s::timestamptz[], %(attempts)s::bigint[],
            %(succeeded)s::bigint[], %(failed_attempts)s::bigint[], %(dead)s::bigint[], %(duration_sums)s::bigint[],
            %(buckets)s::text[])
     AS t (tenant_id, endpoint_id, hour, attempts, succeeded, failed_attempts, dead, duration_sum, buckets)
ORDER BY t.tenant_id, t.endpoint_id, t.hour  -- a fixed order, so two workers never deadlock
ON CONFLICT (tenant_id, endpoint_id, hour) DO UPDATE SET
    attempts = r.attempts + excluded.attempts,
    succeeded = r.succeeded + excluded.succeeded,
    failed_attempts = r.failed_attempts + excluded.failed_attempts,
    dead = r.dead + excluded.dead,
    duration_ms_sum = r.duration_ms_sum + excluded.duration_ms_sum,
    latency_buckets = ARRAY(SELECT a + b FROM unnest(r.latency_buckets, excluded.latency_buckets) AS x (a, b));

-- name: metrics_totals
-- All-time figures for /metrics, the same whichever process is scraped.
SELECT coalesce(sum(attempts), 0)::bigint AS attempts,
       coalesce(sum(succeeded), 0)::bigint AS succeeded,
       coalesce(sum(failed_attempts), 0)::bigint AS failed_attempts,
       coalesce(sum(dead), 0)::bigint AS dead,
       coalesce(sum(duration_ms_sum), 0)::bigint AS duration_ms_sum,
       (SELECT coalesce(array_agg(total ORDER BY i), '{}')
        FROM (SELECT i, sum(b)::bigint AS total
              FROM relay.delivery_rollups, unnest(latency_buckets) WITH ORDINALITY AS x (b, i)
              GROUP BY i) AS per_bucket) AS buckets,
       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM relay.events_seq_seq) AS events_ingested,
       (SELECT count(*) FROM relay.deliveries
        WHERE state IN ('pending', 'retrying', 'delivering') AND next_attempt_at <= now()) AS queue_depth,
       (SELECT coalesce(extract(epoch FROM now() - min(next_attempt_at)), 0) FROM relay.deliveries
        WHERE state IN ('pending', 'retrying') AND next_attempt_at <= now()) AS queue_lag_seconds,
       (SELECT count(*) FROM relay.endpoints WHERE circuit_state <> 'closed' AND deleted_at IS NULL) AS circuits_open
FROM relay.delivery_rollups;

-- name: tenant_rollups_since
-- A tenant's (or one endpoint's) rollups since a time, summed.
SELECT coalesce(sum(attempts), 0)::bigint AS attempts,
       coalesce(sum(succeeded), 0)::bigint AS succeeded,
       coalesce(sum(failed_attempts), 0)::bigint AS failed_attempts,
       coalesce(sum(dead), 0)::bigint AS dead,
       (SELECT coalesce(array_agg(total ORDER BY i), '{}')
        FROM (SELECT i, sum(b)::bigint AS total
              FROM relay.delivery_rollups r2, unnest(r2.latency_buckets) WITH ORDINALITY AS x (b, i)
              WHERE r2.tenant_id = %(tenant_id)s AND r2.hour >= date_trunc('hour', %(since)s::timestamptz)
                AND (%(endpoint_id)s::text IS NULL OR r2.endpoint_id = %(endpoint_id)s)
              GROUP BY i) AS per_bucket) AS buckets
FROM relay.delivery_rollups
WHERE tenant_id = %(tenant_id)s AND hour >= date_trunc('hour', %(since)s::timestamptz)
  AND (%(endpoint_id)s::text IS NULL OR endpoint_id = %(endpoint_id)s);
