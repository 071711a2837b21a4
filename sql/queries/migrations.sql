-- name: create_migrations_table
CREATE SCHEMA IF NOT EXISTS relay;
CREATE TABLE IF NOT EXISTS relay.schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
-- procrastinate's own migrations (file names from its sql/migrations/), kept apart from Relay's versions.
-- source: 'schema' = part of the schema.sql a fresh install ran, 'applied' = this file ran,
-- 'detected' = found in a schema installed before Relay recorded procrastinate's migrations.
CREATE TABLE IF NOT EXISTS relay.procrastinate_migrations (
    name        text PRIMARY KEY,
    source      text NOT NULL CHECK (source IN ('schema', 'applied', 'detected')),
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: applied_migrations
SELECT version FROM relay.schema_migrations;

-- name: record_migration
INSERT INTO relay.schema_migrations (version, name) VALUES (%(version)s, %(name)s);

-- name: recorded_procrastinate_migrations
SELECT name FROM relay.procrastinate_migrations;

-- name: record_procrastinate_migrations
INSERT INTO relay.procrastinate_migrations (name, source) SELECT unnest(%(names)b::text[]), %(source)s;

-- name: procrastinate_installed
-- Unqualified, like procrastinate's own SQL: its objects live in the first schema of the search path.
SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS installed;

-- name: procrastinate_schema_markers
-- One row per procrastinate 3.x migration: is what it changes visible in the catalog? Read only on a
-- database whose procrastinate schema predates relay.procrastinate_migrations. A post migration that
-- only drops is known by the absence of what it drops (meaningful only once its pre migration is seen).
-- Run it without parameters: its LIKE patterns hold %.
SELECT name, present FROM (VALUES
    ('03.00.00_01_pre_cancel_notification.sql', EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = to_regclass('procrastinate_jobs') AND attname = 'abort_requested' AND NOT attisdropped)),
    ('03.00.00_50_post_cancel_notification.sql', EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conrelid = to_regclass('procrastinate_jobs') AND conname = 'check_not_todo_abort_requested')),
    ('03.01.00_01_pre_add_heartbeat.sql',
        to_regclass('procrastinate_workers') IS NOT NULL
        AND to_regprocedure('procrastinate_fetch_job_v2(character varying[], bigint)') IS NOT NULL),
    ('03.01.00_50_post_add_heartbeat.sql',
        to_regprocedure('procrastinate_fetch_job_v1(character varying[])') IS NULL),
    ('03.02.00_01_pre_batch_defer_jobs.sql',
        to_regtype('procrastinate_job_to_defer_v1') IS NOT NULL),
    ('03.02.00_50_post_batch_defer_jobs.sql', to_regprocedure(
        'procrastinate_defer_job_v1(character varying, character varying, integer, text, text, jsonb,'
        ' timestamp with time zone)') IS NULL),
    -- Same signature, new body: locked jobs now yield to higher priorities.
    ('03.03.00_01_pre_priority_lock_fetch_job.sql', EXISTS (
        SELECT 1 FROM pg_proc
        WHERE oid = to_regprocedure('procrastinate_fetch_job_v2(character varying[], bigint)')
          AND prosrc LIKE '%other_jobs.priority > jobs.priority%')),
    ('03.04.00_01_pre_add_retry_failed_job_procedure.sql', EXISTS (
        SELECT 1 FROM pg_enum
        WHERE enumtypid = to_regtype('procrastinate_job_event_type') AND enumlabel = 'retried')),
    -- Same trigger function, new body: it records the failed -> todo move as 'retried'.
    ('03.04.00_50_post_add_retry_failed_job_procedure.sql', EXISTS (
        SELECT 1 FROM pg_proc
        WHERE oid = to_regprocedure('procrastinate_trigger_function_status_events_update_v1()')
          AND prosrc LIKE '%''retried''%'))
) AS marker (name, present)
ORDER BY name;

-- name: migrations_table_exists
SELECT to_regclass('relay.schema_migrations') IS NOT NULL AS present;

-- name: schema_version
-- The highest applied migration (ask migrations_table_exists first on a database that may be new).
SELECT max(version) AS version FROM relay.schema_migrations;

-- name: database_exists
SELECT 1 FROM pg_database WHERE datname = %(name)s;
