-- name: delete_old_attempts
-- One small batch per statement, so no lock is held for long.
DELETE FROM relay.attempts
WHERE id IN (SELECT id FROM relay.attempts WHERE started_at < %(cutoff)s LIMIT %(batch)s);

-- name: delete_old_deliveries
-- Finished deliveries only: an open one (a paused endpoint's backlog) is never dropped.
DELETE FROM relay.deliveries d
USING (SELECT tenant_id, id FROM relay.deliveries
       WHERE completed_at < %(cutoff)s AND state IN ('succeeded', 'dead') LIMIT %(batch)s) AS old
WHERE d.tenant_id = old.tenant_id AND d.id = old.id;

-- name: delete_old_events
-- Events that no delivery refers to any more.
DELETE FROM relay.events e
USING (SELECT v.tenant_id, v.id FROM relay.events v
       WHERE v.created_at < %(cutoff)s
         AND NOT EXISTS (SELECT 1 FROM relay.deliveries d WHERE d.tenant_id = v.tenant_id AND d.event_id = v.id)
       LIMIT %(batch)s) AS old
WHERE e.tenant_id = old.tenant_id AND e.id = old.id;

-- name: delete_old_operations
DELETE FROM relay.operations WHERE finished_at < %(cutoff)s;

-- name: delete_old_event_counts
DELETE FROM relay.event_counts WHERE hour < date_trunc('hour', %(cutoff)s::timestamptz);

-- name: delete_old_audit_log
-- Audit rows past RELAY_AUDIT_RETENTION (its own setting: kept longer than the traffic by default).
DELETE FROM relay.audit_log
WHERE id IN (SELECT id FROM relay.audit_log WHERE at < %(cutoff)s LIMIT %(batch)s);
