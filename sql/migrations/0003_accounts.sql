-- Accounts (users with passwords, refresh tokens), per-key ingest rate limits, and the
-- key that signs access tokens when RELAY_JWT_SECRET is not set (shared by every replica).

CREATE TABLE relay.users (
    id             text PRIMARY KEY,
    tenant_id      text NOT NULL REFERENCES relay.tenants (id) ON DELETE CASCADE,
    email          text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 320),
    password_hash  text NOT NULL,  -- argon2id
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON relay.users (email);
CREATE INDEX users_tenant ON relay.users (tenant_id, id);

-- Refresh tokens rotate on every use. A token used twice means it was stolen: its whole
-- family (every token descended from one login) is revoked.
CREATE TABLE relay.refresh_tokens (
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES relay.tenants (id) ON DELETE CASCADE,
    user_id      text NOT NULL REFERENCES relay.users (id) ON DELETE CASCADE,
    family_id    text NOT NULL,
    token_hash   bytea NOT NULL UNIQUE,  -- SHA-256; the token itself is never stored
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON relay.refresh_tokens (family_id);

ALTER TABLE relay.api_keys
    ADD COLUMN rate_limit integer CHECK (rate_limit IS NULL OR rate_limit BETWEEN 1 AND 1000000);

-- Ingest counts per key and one-second window, spread over a few shards so that a busy
-- key is not one hot row every request of every API replica waits on.
CREATE UNLOGGED TABLE relay.rate_counters (
    subject       text NOT NULL,          -- an API key id or a user id
    window_start  timestamptz NOT NULL,
    shard         smallint NOT NULL,
    used          integer NOT NULL,
    PRIMARY KEY (subject, window_start, shard)
);

CREATE TABLE relay.signing_keys (
    name        text PRIMARY KEY,
    secret      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
