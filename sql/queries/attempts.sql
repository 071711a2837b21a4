-- name: attempts_of_deliveries
SELECT id, delivery_id, attempt_number, started_at, duration_ms, response_status, response_headers,
       response_body, error_class, error_message, outcome, next_attempt_at, lost
FROM relay.attempts
WHERE tenant_id = %(tenant_id)s AND delivery_id = ANY (%(delivery_ids)b::text[])
ORDER BY delivery_id, attempt_number, started_at;
