-- name: list_api_keys
SELECT id, name, prefix, rate_limit, scopes, created_at, last_used_at, revoked_at
FROM relay.api_keys
WHERE tenant_id = %(tenant_id)s AND (%(cursor)s::text IS NULL OR id < %(cursor)s)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: insert_api_key
INSERT INTO relay.api_keys (id, tenant_id, name, prefix, key_hash, rate_limit, scopes)
VALUES (%(id)s, %(tenant_id)s, %(name)s, %(prefix)s, %(key_hash)s, %(rate_limit)s, %(scopes)s)
RETURNING id, name, prefix, rate_limit, scopes, created_at, last_used_at, revoked_at;

-- name: revoke_api_key
-- Every API process forgets the key when the revocation commits (relay/db/key_cache.py).
WITH revoked AS (
    UPDATE relay.api_keys SET revoked_at = now()
    WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND revoked_at IS NULL
    RETURNING id, name, prefix
)
SELECT id, name, prefix, pg_notify('relay_api_keys', id) FROM revoked;

-- name: spend_rate_limit
-- Count `cost` units against `subject` in the current one-second window, on a random
-- shard, and return what the window had used before this request (all shards).
-- Concurrent requests may each see the others' counts a moment late: the limit can be
-- overshot by at most the requests in flight, never undercounted.
WITH spent AS (
    INSERT INTO relay.rate_counters (subject, window_start, shard, used)
    VALUES (%(subject)s, date_trunc('second', now()), %(shard)s, %(cost)s)
    ON CONFLICT (subject, window_start, shard) DO UPDATE SET used = rate_counters.used + excluded.used
)
SELECT coalesce(sum(used), 0)::integer AS used_before,
       extract(epoch FROM date_trunc('second', now()) + interval '1 second' - now())::float8 AS resets_in
FROM relay.rate_counters
WHERE subject = %(subject)s AND window_start = date_trunc('second', now());

-- name: delete_old_rate_counters
DELETE FROM relay.rate_counters WHERE window_start < now() - interval '1 minute';
