-- 010: the dashboard's file-name search (/shards?file=, /api/shards?file=, re-run by filter) through
-- a trigram index instead of a scan of every path.
--
-- Why: the search is a case-insensitive substring match ("utt0399" anywhere in the path), which a
-- btree cannot serve, so each request read all ~400,000 paths of a 27,000-hour corpus and lowered
-- each one: 126 ms on an idle 2-core machine, 0.58-1.15 s p95 under load (`workers bench dashboard`,
-- issue 12), past the dashboard's 0.5 s. A GIN index over the lowered paths' trigrams (pg_trgm)
-- answers `lower(path) LIKE '%...%'` by reading only the matching paths' posting lists.
--
-- pg_trgm ships with PostgreSQL (contrib; in Debian's postgresql-NN package) and is a trusted
-- extension: a role with CREATE on the database (its owner) may install it, no superuser needed.
-- It is installed once per database, in schema public, so every deployment schema of that database
-- (and every test schema) shares it; a schema being dropped does not take it along. If it is
-- already installed in another schema, that one is used. Two migrations racing to install it
-- (two schemas of one database migrating at once) are fine: the loser finds it installed.
--
-- Cost: enqueue writes the index with the files (GIN's pending list batches it); `workers bench
-- enqueue` and the dashboard's enqueue job measure it (README, Figures).
DO $$
DECLARE
    trgm_schema text;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
    EXCEPTION WHEN unique_violation OR duplicate_object THEN
        NULL; -- installed meanwhile by a migration of another schema
    END;
    SELECT n.nspname INTO STRICT trgm_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    EXECUTE format('CREATE INDEX files_path_trgm ON files USING gin (lower(path) %I.gin_trgm_ops)', trgm_schema);
END
$$;
