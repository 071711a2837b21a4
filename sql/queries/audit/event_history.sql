-- Everything that happened to one event: each delivery and each attempt, in order.
-- relay psql -v event_id=evt_… -f sql/queries/audit/event_history.sql
SELECT d.endpoint_id, e.url AS endpoint_url, d.id AS delivery_id, d.state AS delivery_state, d.replay_of,
       a.attempt_number, a.started_at, a.duration_ms, a.response_status, a.error_class, a.error_message,
       a.outcome, a.next_attempt_at
FROM relay.deliveries d
JOIN relay.endpoints e ON e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
LEFT JOIN relay.attempts a ON a.tenant_id = d.tenant_id AND a.delivery_id = d.id
WHERE d.event_id = :'event_id'
ORDER BY d.seq, a.attempt_number, a.started_at;
