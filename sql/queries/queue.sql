-- name: queue_by_endpoint
-- `relay queue`: the deliveries not finished yet, per endpoint, across every tenant (an
-- operator's view, not a tenant's). Only open rows are read: the partial indexes of
-- 0006_fair_delivery.sql hold exactly these, so it stays quick with millions of finished rows.
--   due        ready to send now (pending or retrying, not held, next attempt in the past)
--   scheduled  waiting for a later attempt time (a retry's backoff), not held
--   in_flight  being sent (a worker holds its lease)
--   retrying   in state retrying (already failed at least once), due or not, held or not
--   held_*     held without spending attempts, by reason (pause, fifo, circuit, disabled)
--   oldest_due_seconds  how long the longest-waiting due delivery has been due: the lag
SELECT d.tenant_id, t.name AS tenant_name, d.endpoint_id, e.url,
       count(*) FILTER (WHERE d.state <> 'delivering' AND d.held_by IS NULL AND d.next_attempt_at <= now()) AS due,
       count(*) FILTER (WHERE d.state <> 'delivering' AND d.held_by IS NULL AND d.next_attempt_at > now()) AS scheduled,
       count(*) FILTER (WHERE d.state = 'delivering') AS in_flight,
       count(*) FILTER (WHERE d.state = 'retrying') AS retrying,
       count(*) FILTER (WHERE d.held_by = 'pause') AS held_pause,
       count(*) FILTER (WHERE d.held_by = 'fifo') AS held_fifo,
       count(*) FILTER (WHERE d.held_by = 'circuit') AS held_circuit,
       count(*) FILTER (WHERE d.held_by = 'disabled') AS held_disabled,
       coalesce(extract(epoch FROM now() - min(d.next_attempt_at) FILTER (
           WHERE d.state <> 'delivering' AND d.held_by IS NULL AND d.next_attempt_at <= now())), 0)::float8
           AS oldest_due_seconds
FROM relay.deliveries d
JOIN relay.endpoints e ON e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
JOIN relay.tenants t ON t.id = d.tenant_id
WHERE d.state IN ('pending', 'retrying', 'delivering')
  AND (%(tenant_id)s::text IS NULL OR d.tenant_id = %(tenant_id)s)
  AND (%(endpoint_id)s::text IS NULL OR d.endpoint_id = %(endpoint_id)s)
GROUP BY d.tenant_id, t.name, d.endpoint_id, e.url
ORDER BY due DESC, oldest_due_seconds DESC, d.tenant_id, d.endpoint_id;
