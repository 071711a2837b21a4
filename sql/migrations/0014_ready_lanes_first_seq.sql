-- relay.ready_lanes() also returns the position (seq) of each lane's first ready delivery, so
-- the claim can start its scan of that lane exactly there. Between two vacuums the head of
-- deliveries_ready holds an entry for every delivery claimed since (claims are never HOT
-- updates): the skip scan below steps over them once per lane; without the position the claim
-- stepped over them a second time (~450 index pages per claim at 1,000 events/s).
DROP FUNCTION relay.ready_lanes();
CREATE FUNCTION relay.ready_lanes()
RETURNS TABLE (tenant_id text, endpoint_id text, first_due timestamptz, first_seq bigint)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE lanes AS (
        (SELECT d.tenant_id, d.endpoint_id, d.next_attempt_at, d.seq
         FROM relay.deliveries d
         WHERE d.state IN ('pending', 'retrying') AND d.next_attempt_at < 'infinity'
         ORDER BY d.tenant_id, d.endpoint_id, d.next_attempt_at, d.seq
         LIMIT 1)
        UNION ALL
        SELECT n.tenant_id, n.endpoint_id, n.next_attempt_at, n.seq
        FROM lanes l
        CROSS JOIN LATERAL (
            SELECT d.tenant_id, d.endpoint_id, d.next_attempt_at, d.seq
            FROM relay.deliveries d
            WHERE d.state IN ('pending', 'retrying') AND d.next_attempt_at < 'infinity'
              AND (d.tenant_id, d.endpoint_id) > (l.tenant_id, l.endpoint_id)
            ORDER BY d.tenant_id, d.endpoint_id, d.next_attempt_at, d.seq
            LIMIT 1
        ) AS n
    )
    SELECT * FROM lanes
$$;
