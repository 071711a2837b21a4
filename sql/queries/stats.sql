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
-- Deliveries not finished yet, by state, and in the same pass those due now (not held, not in
-- flight) and how long the oldest has waited: always from the index that holds only these
-- (relay.open_delivery_counts, sql/migrations/0015_open_counts_plan.sql).
SELECT * FROM relay.open_delivery_counts(%(tenant_id)s, %(endpoint_id)s::text);

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
