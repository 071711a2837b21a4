-- name: recent_attempts_of_endpoint
-- The endpoint's latest attempts, newest first (the analyser's evidence).
SELECT id, attempt_number, started_at, duration_ms, response_status, error_class, error_message,
       left(response_body, 300) AS response_body
FROM relay.attempts
WHERE tenant_id = %(tenant_id)s AND endpoint_id = %(endpoint_id)s AND NOT lost  -- Relay's losses say nothing of the endpoint
ORDER BY started_at DESC
LIMIT %(limit)s;

-- name: recent_payload_keys
-- Top-level keys of this event type's recent payloads, with how often each appears.
SELECT key, count(*) AS seen, (SELECT count(*) FROM (
           SELECT 1 FROM relay.events WHERE tenant_id = %(tenant_id)s AND type = %(event_type)s
           ORDER BY created_at DESC LIMIT 200) AS s) AS events
FROM (SELECT body FROM relay.events WHERE tenant_id = %(tenant_id)s AND type = %(event_type)s
      ORDER BY created_at DESC LIMIT 200) AS e,
     jsonb_object_keys(convert_from(e.body, 'UTF8')::jsonb -> 'data') AS key
GROUP BY key;

-- name: failing_endpoints
-- Endpoints of the tenant with failed attempts in the last day, worst first.
SELECT e.id, e.url, e.enabled, e.disabled_reason, e.circuit_state, e.timeout_ms,
       sum(r.failed_attempts)::bigint AS failed, sum(r.attempts)::bigint AS attempts
FROM relay.delivery_rollups r
JOIN relay.endpoints e ON e.tenant_id = r.tenant_id AND e.id = r.endpoint_id
WHERE r.tenant_id = %(tenant_id)s AND r.hour >= now() - interval '24 hours' AND e.deleted_at IS NULL
GROUP BY e.id, e.url, e.enabled, e.disabled_reason, e.circuit_state, e.timeout_ms
HAVING sum(r.failed_attempts) > 0
ORDER BY sum(r.failed_attempts) DESC
LIMIT 5;

-- name: endpoints_with_traffic
-- The anomaly scan's candidates: endpoints with attempts in the recent window, and those with
-- an open alert (so an alert is resolved even when the traffic stops).
SELECT a.tenant_id, a.endpoint_id
FROM relay.attempts a
WHERE a.started_at >= now() - make_interval(secs => %(window)s)
UNION
SELECT tenant_id, endpoint_id FROM relay.alerts WHERE status = 'open';

-- name: window_figures
-- Attempts, failures and p95 duration of one endpoint in the recent window (attempts
-- Relay lost are not the endpoint's doing and are left out).
SELECT count(*) AS attempts, count(*) FILTER (WHERE error_class IS NOT NULL) AS failures,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms
FROM relay.attempts
WHERE tenant_id = %(tenant_id)s AND endpoint_id = %(endpoint_id)s AND NOT lost
  AND started_at >= now() - make_interval(secs => %(window)s);

-- name: baseline_figures
-- The endpoint's own history before the recent window, from rollups.
SELECT coalesce(sum(attempts), 0)::bigint AS attempts, coalesce(sum(failed_attempts), 0)::bigint AS failures,
       relay.sum_buckets(latency_buckets) AS buckets
FROM relay.delivery_rollups
WHERE tenant_id = %(tenant_id)s AND endpoint_id = %(endpoint_id)s
  AND hour >= now() - make_interval(secs => %(history)s)
  AND hour < date_trunc('hour', now() - make_interval(secs => %(window)s));

-- name: open_alert
-- Open (or refresh) the alert for an endpoint and kind; `created` says whether it is new.
INSERT INTO relay.alerts (id, tenant_id, endpoint_id, kind, severity, summary, evidence)
VALUES (%(id)s, %(tenant_id)s, %(endpoint_id)s, %(kind)s, %(severity)s, %(summary)s, %(evidence)s)
ON CONFLICT (tenant_id, endpoint_id, kind) WHERE status = 'open' DO UPDATE
SET severity = excluded.severity, summary = excluded.summary, evidence = excluded.evidence, updated_at = now()
RETURNING id, (xmax = 0) AS created;

-- name: resolve_alert
UPDATE relay.alerts SET status = 'resolved', resolved_at = now(), updated_at = now()
WHERE tenant_id = %(tenant_id)s AND endpoint_id = %(endpoint_id)s AND kind = %(kind)s AND status = 'open'
RETURNING id;

-- name: list_alerts
SELECT id, endpoint_id, kind, status, severity, summary, evidence, opened_at, updated_at, resolved_at
FROM relay.alerts
WHERE tenant_id = %(tenant_id)s AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(cursor)s::text IS NULL OR id < %(cursor)s)
ORDER BY id DESC
LIMIT %(limit)s;
