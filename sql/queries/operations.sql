-- name: insert_operation
INSERT INTO relay.operations (id, tenant_id, kind, filter)
VALUES (%(id)s, %(tenant_id)s, %(kind)s, %(filter)s)
RETURNING *;

-- name: get_operation
SELECT * FROM relay.operations WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: start_operation
UPDATE relay.operations
SET status = 'running', started_at = coalesce(started_at, now()), total = %(total)s
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND status IN ('queued', 'running')
RETURNING *;

-- name: advance_operation
UPDATE relay.operations SET replayed = replayed + %(replayed)s, skipped = skipped + %(skipped)s
WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: finish_operation
UPDATE relay.operations SET status = %(status)s, error = %(error)s, finished_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: stale_queued_operations
-- Operations whose job was never queued (the API died between the two writes).
SELECT tenant_id, id FROM relay.operations
WHERE status = 'queued' AND created_at < now() - interval '1 minute';
