-- name: metrics_totals
-- All-time figures for /metrics, the same whichever process is scraped.
SELECT coalesce(sum(attempts), 0)::bigint AS attempts,
       coalesce(sum(succeeded), 0)::bigint AS succeeded,
       coalesce(sum(failed_attempts), 0)::bigint AS failed_attempts,
       coalesce(sum(dead), 0)::bigint AS dead,
       coalesce(sum(duration_ms_sum), 0)::bigint AS duration_ms_sum,
       relay.sum_buckets(latency_buckets) AS buckets,
       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM relay.events_seq_seq) AS events_ingested,
       coalesce(sum(lost_attempts), 0)::bigint AS lost_attempts,
       (SELECT count(*) FROM relay.deliveries
        WHERE state IN ('pending', 'retrying') AND next_attempt_at <= now() AND next_attempt_at < 'infinity')
           AS queue_depth,
       (SELECT coalesce(extract(epoch FROM now() - min(first_due)), 0) FROM relay.ready_lanes()
        WHERE first_due <= now()) AS queue_lag_seconds,
       (SELECT count(*) FROM relay.endpoints WHERE circuit_state <> 'closed' AND deleted_at IS NULL) AS circuits_open
FROM relay.delivery_rollups;

-- name: tenant_rollups_since
-- A tenant's (or one endpoint's) rollups since a time, summed.
SELECT coalesce(sum(attempts), 0)::bigint AS attempts,
       coalesce(sum(succeeded), 0)::bigint AS succeeded,
       coalesce(sum(failed_attempts), 0)::bigint AS failed_attempts,
       coalesce(sum(dead), 0)::bigint AS dead,
       coalesce(sum(lost_attempts), 0)::bigint AS lost_attempts,
       relay.sum_buckets(latency_buckets) AS buckets
FROM relay.delivery_rollups
WHERE tenant_id = %(tenant_id)s AND hour >= date_trunc('hour', %(since)s::timestamptz)
  AND (%(endpoint_id)s::text IS NULL OR endpoint_id = %(endpoint_id)s);

-- name: endpoint_concurrency
-- Every live endpoint's adaptive concurrency level, its limit and what is in flight now.
-- (in_flight as the stats show it: see relay/api/endpoint_actions.py concurrency_of.)
SELECT tenant_id, id AS endpoint_id, floor(concurrency_level)::integer AS level,
       least(in_flight, coalesce(max_in_flight, %(default_max_in_flight)s)) AS in_flight,
       coalesce(max_in_flight, %(default_max_in_flight)s) AS max_in_flight
FROM relay.endpoints
WHERE deleted_at IS NULL AND enabled
ORDER BY tenant_id, id;

-- name: tenant_rollups_by_hour
-- A tenant's (or one endpoint's) rollups for each of the last hours, oldest first, hours without traffic included.
SELECT h.hour,
       coalesce(sum(r.attempts), 0)::bigint AS attempts,
       coalesce(sum(r.succeeded), 0)::bigint AS succeeded,
       coalesce(sum(r.failed_attempts), 0)::bigint AS failed_attempts,
       coalesce(sum(r.dead), 0)::bigint AS dead,
       coalesce(sum(r.lost_attempts), 0)::bigint AS lost_attempts,
       relay.sum_buckets(r.latency_buckets) AS buckets
FROM generate_series(date_trunc('hour', now()) - make_interval(hours => %(hours)s - 1),
                     date_trunc('hour', now()), interval '1 hour') AS h(hour)
LEFT JOIN relay.delivery_rollups r
       ON r.tenant_id = %(tenant_id)s AND r.hour = h.hour
      AND (%(endpoint_id)s::text IS NULL OR r.endpoint_id = %(endpoint_id)s)
GROUP BY h.hour
ORDER BY h.hour;
