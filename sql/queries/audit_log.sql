-- name: record_audit
-- One audit row, run on the connection (and in the transaction) of the change it records.
INSERT INTO relay.audit_log (id, tenant_id, actor_type, actor, action, target_type, target_id, client_address, details)
VALUES (%(id)s, %(tenant_id)s, %(actor_type)s, %(actor)s, %(action)s, %(target_type)s, %(target_id)s,
        %(client_address)s, %(details)s);

-- name: list_audit_log
-- GET /v1/audit-log: the tenant's entries, newest first, each filter ignored when NULL.
-- An action prefix (`endpoint.`) matches every action under it.
SELECT id, at, actor_type, actor, action, target_type, target_id, client_address, details
FROM relay.audit_log
WHERE tenant_id = %(tenant_id)s
  AND (%(cursor)s::text IS NULL OR id < %(cursor)s)
  AND (%(action)s::text IS NULL OR action = %(action)s)
  AND (%(action_prefix)s::text IS NULL OR starts_with(action, %(action_prefix)s))
  AND (%(actor)s::text IS NULL OR actor = %(actor)s)
  AND (%(target_type)s::text IS NULL OR target_type = %(target_type)s)
  AND (%(target_id)s::text IS NULL OR target_id = %(target_id)s)
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
ORDER BY id DESC
LIMIT %(limit)s;
