-- The audit log of the last 7 days across every tenant, newest first: sign-ins (and failed
-- ones, which may have no tenant), API keys, endpoint changes, secrets rotated or revealed,
-- replays. The actor is a user id (with its email), an API key's prefix, or none.
-- relay psql -f sql/queries/audit/audit_log.sql
SELECT a.at, t.name AS tenant, a.action, a.actor_type, a.actor, u.email AS user_email,
       a.target_type, a.target_id, a.client_address, a.details
FROM relay.audit_log a
LEFT JOIN relay.tenants t ON t.id = a.tenant_id
LEFT JOIN relay.users u ON a.actor_type = 'user' AND u.id = a.actor
WHERE a.at > now() - interval '7 days'
ORDER BY a.at DESC, a.id DESC
LIMIT 1000;
