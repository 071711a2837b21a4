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

-- name: migrations_table_exists
SELECT to_regclass('relay.schema_migrations') IS NOT NULL;

-- name: schema_version
-- The highest applied migration (ask migrations_table_exists first on a database that may be new).
SELECT max(version) FROM relay.schema_migrations;

-- name: database_exists
SELECT 1 FROM pg_database WHERE datname = %(name)s;
