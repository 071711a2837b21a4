-- The dashboard's login sessions (F38). The browser holds a random token in a signed,
-- HttpOnly cookie; only its hash is stored, so a database dump opens no session.
-- Ending a session (logout, later: password change) sets revoked_at: every API process
-- refuses it from the next request on.
CREATE TABLE relay.dashboard_sessions (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES relay.tenants (id) ON DELETE CASCADE,
    user_id     text NOT NULL REFERENCES relay.users (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,  -- sha256 of the token, as refresh tokens are kept
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX dashboard_sessions_user ON relay.dashboard_sessions (tenant_id, user_id) WHERE revoked_at IS NULL;
CREATE INDEX dashboard_sessions_expiry ON relay.dashboard_sessions (expires_at);
