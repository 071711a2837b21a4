-- name: endpoint_counts
SELECT count(*) AS total,
       count(*) FILTER (WHERE enabled AND NOT paused) AS active,
       count(*) FILTER (WHERE paused) AS paused,
       count(*) FILTER (WHERE NOT enabled) AS disabled,
       count(*) FILTER (WHERE circuit_state <> 'closed') AS circuits_open
FROM relay.endpoints
WHERE tenant_id = %(tenant_id)s AND deleted_at IS NULL;

-- name: events_since
-- Events accepted since an hour boundary, from the hourly counts the ingest statements keep.
SELECT coalesce(sum(events), 0)::bigint AS n FROM relay.event_counts
WHERE tenant_id = %(tenant_id)s AND hour >= date_trunc('hour', %(since)s::timestamptz);

-- name: open_delivery_counts
-- Deliveries not finished yet, by state (an index holds only these, so it stays quick), and
-- in the same pass those due now (not held, not in flight) and how long the oldest has waited.
SELECT state::text, count(*) AS n, count(*) FILTER (WHERE held_by IS NOT NULL) AS held,
       count(*) FILTER (WHERE state <> 'delivering' AND held_by IS NULL AND next_attempt_at <= now()) AS due,
       coalesce(extract(epoch FROM now() - min(next_attempt_at) FILTER (
           WHERE state <> 'delivering' AND held_by IS NULL AND next_attempt_at <= now())), 0)::float8 AS lag_seconds
FROM relay.deliveries
WHERE tenant_id = %(tenant_id)s AND state IN ('pending', 'retrying', 'delivering')
  AND (%(endpoint_id)s::text IS NULL OR endpoint_id = %(endpoint_id)s)
GROUP BY state;

-- name: dead_letter_size
SELECT count(*) AS n FROM relay.dead_letter
WHERE tenant_id = %(tenant_id)s
  AND (%(endpoint_id)s::text IS NULL OR endpoint_id = %(endpoint_id)s);

-- name: recent_failures
SELECT id, delivery_id, event_id, endpoint_id, attempt_number, started_at, response_status, error_class, error_message
FROM relay.attempts
WHERE tenant_id = %(tenant_id)s AND error_class IS NOT NULL AND NOT lost  -- the endpoint's failures, not Relay's
  AND (%(endpoint_id)s::text IS NULL OR endpoint_id = %(endpoint_id)s)
ORDER BY started_at DESC
LIMIT %(limit)s;
