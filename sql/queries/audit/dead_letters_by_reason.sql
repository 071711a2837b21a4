-- The dead letter (dead, not replayed, not discarded) grouped by why the last attempt failed.
-- relay psql -f sql/queries/audit/dead_letters_by_reason.sql
SELECT d.tenant_id, coalesce(a.error_class, 'none') AS reason, d.last_status, count(*) AS deliveries,
       min(d.completed_at) AS oldest, max(d.completed_at) AS newest
FROM relay.deliveries d
LEFT JOIN LATERAL (
    SELECT error_class FROM relay.attempts a
    WHERE a.tenant_id = d.tenant_id AND a.delivery_id = d.id
    ORDER BY a.attempt_number DESC LIMIT 1
) AS a ON true
WHERE d.state = 'dead' AND d.replayed_at IS NULL AND d.discarded_at IS NULL
GROUP BY d.tenant_id, reason, d.last_status
ORDER BY deliveries DESC;
