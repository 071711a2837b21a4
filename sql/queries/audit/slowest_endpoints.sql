-- Endpoints by p95 attempt duration over the last 24 hours.
-- relay psql -f sql/queries/audit/slowest_endpoints.sql
SELECT tenant_id, endpoint_id, endpoint_url, count(*) AS attempts,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms,
       max(duration_ms) AS max_ms
FROM relay.delivery_log
WHERE started_at > now() - interval '24 hours'
GROUP BY tenant_id, endpoint_id, endpoint_url
ORDER BY p95_ms DESC
LIMIT 20;
