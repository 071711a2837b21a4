-- name: insert_dashboard_session
INSERT INTO relay.dashboard_sessions (id, tenant_id, user_id, token_hash, expires_at)
VALUES (%(id)s, %(tenant_id)s, %(user_id)s, %(token_hash)s, now() + make_interval(secs => %(ttl)s));

-- name: dashboard_session_user
-- The signed-in user behind a session token, while the session is open.
SELECT s.tenant_id, s.user_id, u.email, t.name AS tenant_name
FROM relay.dashboard_sessions s
JOIN relay.users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
JOIN relay.tenants t ON t.id = s.tenant_id
WHERE s.token_hash = %(token_hash)s AND s.revoked_at IS NULL AND s.expires_at > now();

-- name: end_dashboard_session
UPDATE relay.dashboard_sessions SET revoked_at = now()
WHERE token_hash = %(token_hash)s AND revoked_at IS NULL
RETURNING id, tenant_id, user_id;

-- name: delete_old_dashboard_sessions
DELETE FROM relay.dashboard_sessions WHERE expires_at < now() - interval '1 day';
