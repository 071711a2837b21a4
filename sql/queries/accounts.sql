-- name: insert_user
INSERT INTO relay.users (id, tenant_id, email, password_hash)
VALUES (%(id)s, %(tenant_id)s, %(email)s, %(password_hash)s)
ON CONFLICT (email) DO NOTHING
RETURNING id, tenant_id, email, created_at;

-- name: user_by_email
SELECT id, tenant_id, email, password_hash, created_at FROM relay.users WHERE email = %(email)s;

-- name: get_user
SELECT u.id, u.tenant_id, u.email, u.created_at, t.name AS tenant_name
FROM relay.users u JOIN relay.tenants t ON t.id = u.tenant_id
WHERE u.tenant_id = %(tenant_id)s AND u.id = %(id)s;

-- name: insert_refresh_token
INSERT INTO relay.refresh_tokens (id, tenant_id, user_id, family_id, token_hash, expires_at)
VALUES (%(id)s, %(tenant_id)s, %(user_id)s, %(family_id)s, %(token_hash)s, now() + make_interval(secs => %(ttl)s));

-- name: use_refresh_token
-- Spend a refresh token: only an unused, unrevoked, unexpired token is spent (once).
UPDATE relay.refresh_tokens SET used_at = now()
WHERE token_hash = %(token_hash)s AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
RETURNING id, tenant_id, user_id, family_id;

-- name: refresh_token_by_hash
SELECT id, tenant_id, user_id, family_id, used_at, revoked_at, expires_at
FROM relay.refresh_tokens WHERE token_hash = %(token_hash)s;

-- name: revoke_token_family
UPDATE relay.refresh_tokens SET revoked_at = now()
WHERE family_id = %(family_id)s AND revoked_at IS NULL;

-- name: signing_key
-- The access-token signing key, made once and shared by every replica.
WITH made AS (
    INSERT INTO relay.signing_keys (name, secret) VALUES (%(name)s, %(secret)s)
    ON CONFLICT (name) DO NOTHING
    RETURNING secret
)
SELECT secret FROM made
UNION ALL
SELECT secret FROM relay.signing_keys WHERE name = %(name)s
LIMIT 1;

-- name: tenant_name
SELECT name FROM relay.tenants WHERE id = %(tenant_id)s;

-- name: user_with_password
-- The signed-in user and its password hash, to check the current password before a change.
SELECT id, tenant_id, email, password_hash FROM relay.users
WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: change_password
-- Guarded by the hash the current password was checked against: zero rows means another
-- change won the race. Access tokens issued before this moment are refused from now on.
UPDATE relay.users SET password_hash = %(new_hash)s, sessions_valid_after = clock_timestamp()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND password_hash = %(old_hash)s
RETURNING extract(epoch FROM sessions_valid_after)::float8 AS sessions_valid_after;

-- name: revoke_user_refresh_tokens
UPDATE relay.refresh_tokens SET revoked_at = now()
WHERE user_id = %(user_id)s AND tenant_id = %(tenant_id)s AND revoked_at IS NULL;

-- name: end_user_dashboard_sessions
UPDATE relay.dashboard_sessions SET revoked_at = now()
WHERE tenant_id = %(tenant_id)s AND user_id = %(user_id)s AND revoked_at IS NULL;

-- name: notify_sessions_ended
-- Every API process drops the user's cached cutoff when this commits (relay/db/key_cache.py).
SELECT pg_notify('relay_sessions', %(user_id)s);

-- name: sessions_valid_after
-- A user's cutoff for access tokens (seconds since the epoch), read when the process's cache has none.
SELECT extract(epoch FROM sessions_valid_after)::float8 AS sessions_valid_after
FROM relay.users WHERE id = %(user_id)s;
