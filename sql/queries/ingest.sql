-- name: ingest_group
-- Group commit: the single-event requests that reached one API process while its previous
-- write was in flight, for any tenants, stored by one statement (one round trip, one commit,
-- one NOTIFY). Each request's rate limit is charged here as well, so the hot path has no
-- other round trip. Every incoming row gets its own verdict:
--   endpoint_known  false: `endpoint_id` names no endpoint of the tenant (nothing stored)
--   used_after      the subject's count in this one-second window including this request;
--                   over `rate_limit` → refused (nothing stored; still counted, as ever)
--   inserted        false for an admitted event whose idempotency key was used before
--                   (the caller looks the original up and compares the requests)
-- Limits are counted in relay.rate_counters, shared by every API process: a statement sees
-- the counts committed before it, so concurrent flushes of other processes can overshoot a
-- limit by at most what they carry at that moment (one flush each), never undercount it.
-- Bodies and request hashes are sent in binary (the b placeholders): no bytea escaping, about
-- a sixth less client CPU per statement (measured: 40 to 34 microseconds per event, groups of 30).
WITH incoming AS (
    SELECT *
    FROM unnest(%(tenant_ids)b::text[], %(subjects)b::text[], %(rate_limits)b::integer[], %(ids)b::text[],
                %(types)b::text[], %(channels)b::text[], %(bodies)b::bytea[], %(idempotency_keys)b::text[],
                %(request_hashes)b::bytea[], %(endpoint_ids)b::text[], %(created_at)b::timestamptz[])
         WITH ORDINALITY
         AS t (tenant_id, subject, rate_limit, id, type, channels, body, idempotency_key, request_hash, endpoint_id,
               created_at, position)
), charges AS (
    SELECT subject, count(*)::integer AS cost FROM incoming WHERE rate_limit > 0 GROUP BY subject
), used AS (
    SELECT c.subject, coalesce(sum(r.used), 0)::integer AS used_before
    FROM charges c
    LEFT JOIN relay.rate_counters r ON r.subject = c.subject AND r.window_start = date_trunc('second', now())
    GROUP BY c.subject
), spent AS (
    -- One row per subject (a random shard each), in subject order so concurrent flushes lock alike.
    INSERT INTO relay.rate_counters (subject, window_start, shard, used)
    SELECT subject, date_trunc('second', now()), floor(random() * 8)::smallint, cost FROM charges ORDER BY subject
    ON CONFLICT (subject, window_start, shard) DO UPDATE SET used = rate_counters.used + excluded.used
), judged AS (
    SELECT t.*,
           CASE WHEN t.rate_limit > 0
                THEN u.used_before + row_number() OVER (PARTITION BY t.subject ORDER BY t.position) END AS used_after,
           (t.endpoint_id IS NULL OR EXISTS (
               SELECT 1 FROM relay.endpoints e
               WHERE e.tenant_id = t.tenant_id AND e.id = t.endpoint_id AND e.deleted_at IS NULL)) AS endpoint_known
    FROM incoming t
    LEFT JOIN used u ON u.subject = t.subject
), admitted AS (
    SELECT * FROM judged WHERE endpoint_known AND (rate_limit <= 0 OR used_after <= rate_limit)
), inserted AS (
    INSERT INTO relay.events (id, tenant_id, type, channels, body, idempotency_key, request_hash, created_at)
    SELECT id, tenant_id, type, string_to_array(channels, ','), body, idempotency_key, request_hash, created_at
    FROM admitted
    ORDER BY position
    ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, tenant_id, type, channels
), new_events AS (
    SELECT i.tenant_id, i.id, i.type, i.channels, a.endpoint_id, a.position
    FROM inserted i JOIN admitted a ON a.id = i.id
), {{fragment_fan_out}}
SELECT t.position, t.id, t.endpoint_known, t.used_after,
       (i.id IS NOT NULL) AS inserted, coalesce(c.deliveries, 0) AS deliveries,
       extract(epoch FROM date_trunc('second', now()) + interval '1 second' - now())::float8 AS resets_in
FROM judged t
LEFT JOIN inserted i ON i.id = t.id
LEFT JOIN counts c ON c.event_id = t.id
LEFT JOIN wake ON true
ORDER BY t.position;

-- name: originals_by_idempotency_key
-- For group commit: the originals of replayed requests, for any tenants.
SELECT e.tenant_id, e.idempotency_key, e.id, e.request_hash,
       (SELECT count(*) FROM relay.deliveries d WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id) AS deliveries
FROM unnest(%(tenant_ids)b::text[], %(keys)b::text[]) AS k (tenant_id, idempotency_key)
JOIN relay.events e ON e.tenant_id = k.tenant_id AND e.idempotency_key = k.idempotency_key;
