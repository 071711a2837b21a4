-- Security hardening (issue 13): scoped API keys, login throttling, an audit trail, and
-- sessions that end on a password change.

-- A key's scopes: `events:write` (ingest only), `read` (everything readable, no changes),
-- `admin` (everything). Keys made before scopes existed keep what they could do: admin.
ALTER TABLE relay.api_keys
    ADD COLUMN scopes text[] NOT NULL DEFAULT '{admin}'
        CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['events:write', 'read', 'admin']);

-- Failed logins, counted per subject: `account:<sha256 of the email>` and `address:<client address>`.
-- Shared by every API process. `strikes` counts how often the subject was blocked, and
-- each block lasts longer than the one before (see relay/db/throttle.py).
CREATE TABLE relay.login_throttle (
    subject          text PRIMARY KEY,
    failures         integer NOT NULL DEFAULT 0,
    window_started   timestamptz NOT NULL DEFAULT now(),
    blocked_until    timestamptz,
    strikes          integer NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_throttle_updated ON relay.login_throttle (updated_at);

-- Who did what, written in the transaction of the change it records. Never a secret:
-- `details` holds what changed (field names and non-secret values), and the actor of an
-- API key is its display prefix. A failed login for an unknown email has no tenant.
CREATE TABLE relay.audit_log (
    id              text PRIMARY KEY,             -- aud_…, time-ordered (cursor paging)
    at              timestamptz NOT NULL DEFAULT now(),
    tenant_id       text REFERENCES relay.tenants (id) ON DELETE CASCADE,
    actor_type      text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'anonymous', 'system')),
    actor           text,                          -- a user id, an API key's prefix, or NULL
    action          text NOT NULL,                 -- `endpoint.created`, `login.failed`, …
    target_type     text,
    target_id       text,
    client_address  text,
    details         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant ON relay.audit_log (tenant_id, id DESC);
CREATE INDEX audit_log_at ON relay.audit_log (at);

-- Access tokens issued before this moment are refused (a password change ends every session).
ALTER TABLE relay.users ADD COLUMN sessions_valid_after timestamptz;
