-- The count of open deliveries behind /v1/stats and the endpoint stats always reads the index of
-- open deliveries (deliveries_open_by_endpoint), whatever the table's statistics last said.
-- In the last tenth of a 100,000 drain every call counts afresh (fewer than 10,000 open), and the
-- planner, on statistics gathered mid-drain that still saw tens of thousands open, read the whole
-- table: a sequential scan of ~100,000 rows just finished, 50-100 ms a call (PostgreSQL 18.6,
-- 2 cores), against 3-17 ms for the index-only scan of the same moments (both timed side by side
-- during one drain). The settings below apply to this function's statement only.
CREATE FUNCTION relay.open_delivery_counts(p_tenant_id text, p_endpoint_id text)
RETURNS TABLE (state text, n bigint, held bigint, due bigint, lag_seconds float8)
LANGUAGE sql STABLE
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
    SELECT d.state::text, count(*), count(*) FILTER (WHERE d.held_by IS NOT NULL),
           count(*) FILTER (WHERE d.state <> 'delivering' AND d.held_by IS NULL AND d.next_attempt_at <= now()),
           coalesce(extract(epoch FROM now() - min(d.next_attempt_at) FILTER (
               WHERE d.state <> 'delivering' AND d.held_by IS NULL AND d.next_attempt_at <= now())), 0)::float8
    FROM relay.deliveries d
    WHERE d.tenant_id = p_tenant_id AND d.state IN ('pending', 'retrying', 'delivering')
      AND (p_endpoint_id IS NULL OR d.endpoint_id = p_endpoint_id)
    GROUP BY d.state
$$;
