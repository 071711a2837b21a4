-- name: insert_endpoint
INSERT INTO relay.endpoints (id, tenant_id, url, description, secret, event_types, channels, headers, enabled, timeout_ms)
VALUES (%(id)s, %(tenant_id)s, %(url)s, %(description)s, %(secret)s, %(event_types)s, %(channels)s,
        %(headers)s, %(enabled)s, %(timeout_ms)s)
RETURNING *;

-- name: get_endpoint
SELECT * FROM relay.endpoints
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL;

-- name: list_endpoints
SELECT * FROM relay.endpoints
WHERE tenant_id = %(tenant_id)s AND deleted_at IS NULL
  AND (%(cursor)s::text IS NULL OR id < %(cursor)s)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: update_endpoint
-- A NULL parameter leaves its column as it is.
UPDATE relay.endpoints SET
    url = coalesce(%(url)s, url),
    description = coalesce(%(description)s, description),
    event_types = coalesce(%(event_types)s, event_types),
    channels = coalesce(%(channels)s, channels),
    headers = coalesce(%(headers)s, headers),
    timeout_ms = coalesce(%(timeout_ms)s, timeout_ms),
    enabled = coalesce(%(enabled)s, enabled),
    disabled_reason = CASE WHEN coalesce(%(enabled)s, enabled) THEN NULL
                           WHEN %(enabled)s IS NOT NULL THEN 'manual' ELSE disabled_reason END,
    updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL
RETURNING *;

-- name: delete_endpoint
UPDATE relay.endpoints SET deleted_at = now(), enabled = false, disabled_reason = 'deleted', updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL
RETURNING id;

-- name: existing_endpoints
SELECT id FROM relay.endpoints
WHERE tenant_id = %(tenant_id)s AND id = ANY (%(ids)s::text[]) AND deleted_at IS NULL;
