-- Failed attempts per endpoint in the last 24 hours, worst first.
-- relay psql -f sql/queries/audit/failures_by_endpoint_24h.sql
SELECT tenant_id, endpoint_id, endpoint_url,
       count(*) FILTER (WHERE error_class IS NOT NULL) AS failed_attempts,
       count(*) AS attempts,
       round(100.0 * count(*) FILTER (WHERE error_class IS NOT NULL) / count(*), 1) AS failure_pct,
       mode() WITHIN GROUP (ORDER BY error_class) FILTER (WHERE error_class IS NOT NULL) AS commonest_error
FROM relay.delivery_log
WHERE started_at > now() - interval '24 hours'
GROUP BY tenant_id, endpoint_id, endpoint_url
HAVING count(*) FILTER (WHERE error_class IS NOT NULL) > 0
ORDER BY failed_attempts DESC
LIMIT 50;
