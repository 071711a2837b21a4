-- name: create_migrations_table
CREATE SCHEMA IF NOT EXISTS relay;
CREATE TABLE IF NOT EXISTS relay.schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: applied_migrations
SELECT version FROM relay.schema_migrations;

-- name: record_migration
INSERT INTO relay.schema_migrations (version, name) VALUES (%(version)s, %(name)s);

-- name: procrastinate_installed
SELECT to_regclass('public.procrastinate_jobs') IS NOT NULL;

-- name: schema_version
-- The highest applied migration, or NULL on a database Relay has never migrated.
SELECT CASE WHEN to_regclass('relay.schema_migrations') IS NULL THEN NULL
            ELSE (SELECT max(version) FROM relay.schema_migrations) END;

-- name: database_exists
SELECT 1 FROM pg_database WHERE datname = %(name)s;
