-- Migrations runner statements (Migrations/MigrationRunner.cs). The migrations themselves are the
-- files in migrations/, applied as they are.

-- name: MigrationsLock
-- A session advisory lock serializes concurrent runners. Keyed by schema, so independent
-- deployments (or test schemas) in one database do not wait on each other.
SELECT pg_advisory_lock(hashtextextended('workers.migrate:' || current_schema(), 0));

-- name: MigrationsUnlock
SELECT pg_advisory_unlock(hashtextextended('workers.migrate:' || current_schema(), 0));

-- name: MigrationsTableCreate
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now());

-- name: MigrationsApplied
SELECT version, name, checksum FROM schema_migrations;

-- name: MigrationRecord
INSERT INTO schema_migrations (version, name, checksum) VALUES (@version, @name, @checksum);
