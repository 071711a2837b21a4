-- Catalog facts about procrastinate's objects (in public, where schema.sql puts them on a test database):
-- two databases with the same rows here have the same procrastinate schema. Column order is left out on
-- purpose: a migration's ADD COLUMN appends where a fresh schema.sql declares the column in the middle.

-- name: relations
-- Tables, sequences, indexes and composite types, by kind.
SELECT c.relname, c.relkind::text
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace
  AND c.relname LIKE '%procrastinate%'
ORDER BY 1;

-- name: columns
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text, a.attidentity::text,
       coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relnamespace = 'public'::regnamespace
  AND c.relname LIKE 'procrastinate%' AND c.relkind IN ('r', 'c', 'v')
ORDER BY 1, 2;

-- name: functions
-- Signature, result and body (comments dropped, whitespace collapsed: a migration's copy is laid out
-- differently from schema.sql's).
SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid),
       trim(regexp_replace(regexp_replace(p.prosrc, '--[^\n]*', '', 'g'), '\s+', ' ', 'g'))
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace
  AND p.proname LIKE 'procrastinate%'
ORDER BY 1, 2;

-- name: indexes
SELECT tablename, indexname, indexdef
FROM pg_indexes
WHERE schemaname = 'public'
  AND tablename LIKE 'procrastinate%'
ORDER BY 1, 2;

-- name: constraints
SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
FROM pg_constraint c
WHERE c.connamespace = 'public'::regnamespace AND c.conrelid::regclass::text LIKE 'procrastinate%'
ORDER BY 1, 2;

-- name: triggers
SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid)
FROM pg_trigger t
WHERE NOT t.tgisinternal AND t.tgrelid::regclass::text LIKE 'procrastinate%'
ORDER BY 1, 2;

-- name: enums
-- Labels in their sort order (ALTER TYPE … ADD VALUE AFTER must land where schema.sql declares it).
SELECT t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
FROM pg_type t
JOIN pg_enum e ON e.enumtypid = t.oid
WHERE t.typnamespace = 'public'::regnamespace
  AND t.typname LIKE 'procrastinate%'
GROUP BY 1
ORDER BY 1;
