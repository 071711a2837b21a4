-- A password change revokes every live refresh token of the user: find them without a scan
-- of a table that keeps every token ever issued.
CREATE INDEX refresh_tokens_user_live ON relay.refresh_tokens (user_id) WHERE revoked_at IS NULL;
