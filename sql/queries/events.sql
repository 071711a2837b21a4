-- name: insert_events
-- Store events and one pending delivery per matching endpoint, and wake the dispatchers,
-- in one statement (so one transaction): an accepted event cannot exist without its
-- deliveries, and NOTIFY is only sent when that transaction commits.
-- Returns one row per incoming event, in order; `inserted` is false for an event whose
-- idempotency key was already used (the caller then looks the original up).
WITH incoming AS (
    SELECT *
    FROM unnest(%(ids)b::text[], %(types)b::text[], %(channels)b::text[], %(bodies)b::bytea[],
                %(idempotency_keys)b::text[], %(request_hashes)b::bytea[], %(endpoint_ids)b::text[],
                %(created_at)b::timestamptz[])
         WITH ORDINALITY
         AS t (id, type, channels, body, idempotency_key, request_hash, endpoint_id, created_at, position)
), inserted AS (
    INSERT INTO relay.events (id, tenant_id, type, channels, body, idempotency_key, request_hash, created_at)
    SELECT id, %(tenant_id)s, type, string_to_array(channels, ','), body, idempotency_key, request_hash, created_at
    FROM incoming
    ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, tenant_id, type, channels
), new_events AS (
    SELECT i.tenant_id, i.id, i.type, i.channels, t.endpoint_id, t.position
    FROM inserted i JOIN incoming t ON t.id = i.id
), {{fragment_fan_out}}
SELECT t.id, (i.id IS NOT NULL) AS inserted, coalesce(c.deliveries, 0) AS deliveries
FROM incoming t
LEFT JOIN inserted i ON i.id = t.id
LEFT JOIN counts c ON c.event_id = t.id
LEFT JOIN wake ON true
ORDER BY t.position;

-- name: fragment_fan_out
-- The fan-out shared by insert_events and ingest_group, as CTEs after a `new_events`
-- (tenant_id, id, type, channels, endpoint_id, position) of the events just stored:
-- each with every endpoint it goes to (a paused endpoint holds its new deliveries, a FIFO
-- endpoint all but its oldest open one), the deliveries, their count per event, one
-- NOTIFY to wake the dispatchers when any delivery was made, and the events counted per
-- tenant and hour (relay.event_counts, one random shard per statement and tenant).
counted_events AS (
    INSERT INTO relay.event_counts (tenant_id, hour, shard, events)
    SELECT tenant_id, date_trunc('hour', now()), floor(random() * 8)::smallint, count(*)
    FROM new_events GROUP BY tenant_id ORDER BY tenant_id
    ON CONFLICT (tenant_id, hour, shard) DO UPDATE SET events = event_counts.events + excluded.events
), targets AS (
    SELECT n.tenant_id, n.id AS event_id, n.type, ep.id AS endpoint_id, n.position,
           CASE WHEN ep.paused THEN 'pause'
                WHEN ep.fifo AND (
                    row_number() OVER (PARTITION BY ep.tenant_id, ep.id ORDER BY n.position) > 1
                    OR EXISTS (SELECT 1 FROM relay.deliveries o
                               WHERE o.tenant_id = n.tenant_id AND o.endpoint_id = ep.id
                                 AND o.state IN ('pending', 'retrying', 'delivering')))
                    THEN 'fifo'
           END AS held_by
    FROM new_events n
    JOIN relay.endpoints ep
      ON ep.tenant_id = n.tenant_id AND ep.enabled AND ep.deleted_at IS NULL
     AND ep.verification IN ('not_required', 'verified')
     AND CASE WHEN n.endpoint_id IS NOT NULL THEN ep.id = n.endpoint_id
              ELSE relay.type_matches(ep.event_types, n.type)
                   AND (cardinality(ep.channels) = 0 OR ep.channels && n.channels)
         END
), fanned AS (
    INSERT INTO relay.deliveries (id, tenant_id, event_id, endpoint_id, event_type, state, held_by, next_attempt_at)
    SELECT relay.new_id('dlv'), tenant_id, event_id, endpoint_id, type, 'pending', held_by,
           CASE WHEN held_by IS NULL THEN now() ELSE 'infinity'::timestamptz END
    FROM targets
    ORDER BY position
    RETURNING event_id
), counts AS (
    SELECT event_id, count(*) AS deliveries FROM fanned GROUP BY event_id
), wake AS (
    SELECT pg_notify('relay_deliveries', '') AS sent FROM (SELECT 1 FROM fanned LIMIT 1) AS any_delivery
)

-- name: events_by_idempotency_key
-- The originals of replayed requests, with how many deliveries each made.
SELECT e.id, e.idempotency_key, e.request_hash,
       (SELECT count(*) FROM relay.deliveries d WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id) AS deliveries
FROM relay.events e
WHERE e.tenant_id = %(tenant_id)s AND e.idempotency_key = ANY (%(keys)b::text[]);

-- name: get_event
SELECT id, type, channels, body, idempotency_key, created_at FROM relay.events
WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: list_events
-- A page of events, newest first, each with how many of its deliveries are in each state
-- (counted for the page's events only, through deliveries_event).
SELECT e.id, e.type, e.channels, e.body, e.idempotency_key, e.created_at,
       coalesce(counts.delivery_states, '{}') AS delivery_states
FROM (
    SELECT id, tenant_id, type, channels, body, idempotency_key, created_at FROM relay.events
    WHERE tenant_id = %(tenant_id)s
      AND (%(cursor)s::text IS NULL OR id < %(cursor)s)
      AND (%(event_type)s::text IS NULL OR type = %(event_type)s)
      AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
      AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s)
    ORDER BY id DESC
    LIMIT %(limit)s
) AS e
LEFT JOIN LATERAL (
    SELECT jsonb_object_agg(per_state.state, per_state.deliveries) AS delivery_states
    FROM (SELECT d.state, count(*) AS deliveries FROM relay.deliveries d
          WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id
          GROUP BY d.state) AS per_state
) AS counts ON true
ORDER BY e.id DESC;
