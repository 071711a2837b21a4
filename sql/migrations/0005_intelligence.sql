-- Failure intelligence: JSON Schemas for event types, and anomaly alerts.

ALTER TABLE relay.event_types ADD COLUMN schema jsonb;

-- One open alert per endpoint and kind at a time; it is resolved when the endpoint recovers.
CREATE TABLE relay.alerts (
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES relay.tenants (id) ON DELETE CASCADE,
    endpoint_id  text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('failure_rate', 'latency')),
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    severity     text NOT NULL,
    summary      text NOT NULL,
    evidence     jsonb NOT NULL,
    opened_at    timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz
);
CREATE UNIQUE INDEX alerts_one_open ON relay.alerts (tenant_id, endpoint_id, kind) WHERE status = 'open';
CREATE INDEX alerts_tenant ON relay.alerts (tenant_id, id);
