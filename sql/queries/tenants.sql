-- name: create_tenant
INSERT INTO relay.tenants (id, name) VALUES (%(id)s, %(name)s);

-- name: authenticate_api_key
-- Find the live key with this hash; last_used_at is refreshed at most once a minute to keep it cheap.
WITH found AS (
    SELECT id, tenant_id, last_used_at, rate_limit, prefix, scopes FROM relay.api_keys
    WHERE key_hash = %(key_hash)s AND revoked_at IS NULL
), touched AS (
    UPDATE relay.api_keys k SET last_used_at = now()
    FROM found
    WHERE k.id = found.id AND k.tenant_id = found.tenant_id
      AND (found.last_used_at IS NULL OR found.last_used_at < now() - interval '1 minute')
)
SELECT id, tenant_id, rate_limit, prefix, scopes FROM found;

-- name: ensure_operator_tenant
INSERT INTO relay.tenants (id, name) VALUES (%(id)s, 'relay-operator') ON CONFLICT (id) DO NOTHING;

-- name: ensure_operator_endpoint
INSERT INTO relay.endpoints (id, tenant_id, url, secret, headers, description)
VALUES (%(id)s, %(tenant_id)s, %(url)s, %(secret)s, %(headers)s, 'Relay operational webhooks')
ON CONFLICT (id) DO UPDATE
SET url = excluded.url, secret = excluded.secret, enabled = true, disabled_reason = NULL, deleted_at = NULL,
    updated_at = now();

-- name: disable_operator_endpoint
UPDATE relay.endpoints SET enabled = false, disabled_reason = 'not configured', updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND enabled;
