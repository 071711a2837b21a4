-- Failed attempts per endpoint in the last 24 hours, worst first. Attempts Relay lost
-- (a worker died mid-attempt) are counted apart: they are not the endpoint's failures.
-- relay psql -f sql/queries/audit/failures_by_endpoint_24h.sql
SELECT tenant_id, endpoint_id, endpoint_url,
       count(*) FILTER (WHERE error_class IS NOT NULL AND NOT lost) AS failed_attempts,
       count(*) FILTER (WHERE NOT lost) AS attempts,
       round(100.0 * count(*) FILTER (WHERE error_class IS NOT NULL AND NOT lost)
             / nullif(count(*) FILTER (WHERE NOT lost), 0), 1) AS failure_pct,
       mode() WITHIN GROUP (ORDER BY error_class) FILTER (WHERE error_class IS NOT NULL AND NOT lost) AS commonest_error,
       count(*) FILTER (WHERE lost) AS lost_attempts
FROM relay.delivery_log
WHERE started_at > now() - interval '24 hours'
GROUP BY tenant_id, endpoint_id, endpoint_url
HAVING count(*) FILTER (WHERE error_class IS NOT NULL) > 0  -- lost ones included: worth a look too
ORDER BY failed_attempts DESC
LIMIT 50;
