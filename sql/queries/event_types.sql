-- name: upsert_event_type
INSERT INTO relay.event_types (tenant_id, name, description, retry_schedule, schema)
VALUES (%(tenant_id)s, %(name)s, %(description)s, %(retry_schedule)s, %(schema)s)
ON CONFLICT (tenant_id, name) DO UPDATE
SET description = excluded.description, retry_schedule = excluded.retry_schedule, schema = excluded.schema,
    updated_at = now()
RETURNING *;

-- name: get_event_type
SELECT * FROM relay.event_types WHERE tenant_id = %(tenant_id)s AND name = %(name)s;

-- name: list_event_types
SELECT * FROM relay.event_types
WHERE tenant_id = %(tenant_id)s AND (%(cursor)s::text IS NULL OR name > %(cursor)s)
ORDER BY name
LIMIT %(limit)s;

-- name: delete_event_type
DELETE FROM relay.event_types WHERE tenant_id = %(tenant_id)s AND name = %(name)s RETURNING name;
