-- Events accepted per tenant and hour, kept by the statements that store events (insert_events,
-- ingest_group), so "events today" is a sum over at most 24 × 8 small rows instead of a count
-- over every event of the day (which grows with the day's traffic: ~86 million rows at 1,000/s).
-- Spread over 8 shards per hour so concurrent writers of one tenant rarely wait on one row.
CREATE TABLE relay.event_counts (
    tenant_id  text NOT NULL,
    hour       timestamptz NOT NULL,
    shard      smallint NOT NULL,
    events     bigint NOT NULL,
    PRIMARY KEY (tenant_id, hour, shard)
);
CREATE INDEX event_counts_hour ON relay.event_counts (hour);

-- The last two days of what is already stored (older hours are never asked for "today").
INSERT INTO relay.event_counts (tenant_id, hour, shard, events)
SELECT tenant_id, date_trunc('hour', created_at), 0, count(*)
FROM relay.events
WHERE created_at >= now() - interval '2 days'
GROUP BY 1, 2;
