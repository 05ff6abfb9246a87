-- Maintenance statements: retention pruning (options section Retention).
-- Time (issue 11): every comparison uses the database's clock, coalesce(@now::timestamptz, now()).
-- Production never passes @now (NULL), so the whole fleet agrees on one clock whatever a node's
-- own clock says; tests pin @now through the very same statements (DbClock).
-- Every delete is one short statement of at most @batch rows, so a prune of millions of rows
-- never holds row locks or a long transaction; autocommit between batches lets autovacuum reclaim
-- space as it goes.

-- name: MaintenanceTryLock
-- Session-level advisory try-lock on the connection that runs the batches: at most one node
-- prunes at a time, the others skip at once instead of waiting. Keyed by schema, like the
-- migration lock, so deployments (and test schemas) sharing a database do not exclude each other.
SELECT pg_try_advisory_lock(hashtextextended('workers.maintenance:' || @task || ':' || current_schema(), 0)) AS locked;

-- name: MaintenanceUnlock
SELECT pg_advisory_unlock(hashtextextended('workers.maintenance:' || @task || ':' || current_schema(), 0));

-- name: MaintenanceLastRunGet
-- How long ago the task last ran, fleet-wide (read under its lock), on the database's clock.
SELECT coalesce(@now::timestamptz, now()) - last_run_at AS age FROM maintenance_runs WHERE task = @task;

-- name: MaintenanceLastRunSet
INSERT INTO maintenance_runs (task, last_run_at, detail) VALUES (@task, coalesce(@now::timestamptz, now()), @detail)
ON CONFLICT (task) DO UPDATE SET last_run_at = EXCLUDED.last_run_at, detail = EXCLUDED.detail;

-- name: AttemptsPruneBatch
-- Delete up to @batch finished attempts that ended before coalesce(@now::timestamptz, now()) - @keep, never the latest attempt
-- of a shard (a dead shard's last error stays readable however old it is), never a running one.
-- Walks the primary key from (@after_shard, @after_attempt): each batch resumes where the last
-- one stopped, so rows kept are read once per prune, not once per batch. SKIP LOCKED: a row some
-- transaction is updating right now is left for the next prune. Returns the number deleted and
-- the last key deleted (no row when nothing was deleted).
WITH doomed AS (
    SELECT a.shard_id, a.attempt
    FROM shard_attempts a
    WHERE (a.shard_id, a.attempt) > (@after_shard, @after_attempt)
      AND a.outcome <> 'running'
      AND a.finished_at < coalesce(@now::timestamptz, now()) - @keep
      AND a.attempt < (SELECT max(l.attempt) FROM shard_attempts l WHERE l.shard_id = a.shard_id)
    ORDER BY a.shard_id, a.attempt
    LIMIT @batch
    FOR UPDATE SKIP LOCKED
), deleted AS (
    DELETE FROM shard_attempts a
    USING doomed d
    WHERE a.shard_id = d.shard_id AND a.attempt = d.attempt
    RETURNING a.shard_id, a.attempt
)
SELECT (SELECT count(*) FROM deleted) AS deleted, shard_id, attempt
FROM deleted
ORDER BY shard_id DESC, attempt DESC
LIMIT 1;

-- name: WorkersPruneBatch
-- Delete up to @batch registry rows of workers that stopped cleanly before coalesce(@now::timestamptz, now()) - @keep.
-- crash_looping rows stay (a person still has to look at them), and so do running ones, however
-- stale their heartbeat. The partial index workers_stopped finds them.
DELETE FROM workers
WHERE id IN (
    SELECT id FROM workers
    WHERE state = 'stopped' AND stopped_at < coalesce(@now::timestamptz, now()) - @keep
    ORDER BY stopped_at
    LIMIT @batch
    FOR UPDATE SKIP LOCKED
);

-- name: ThroughputPruneBatch
-- Fold up to @batch rows of minutes older than coalesce(@now::timestamptz, now()) - @keep into the single throughput_archive
-- row and delete them, in one statement: the lifetime totals (archive + rows kept) never drop and
-- never count a row twice, whatever a concurrent reader sees. Returns the rows deleted.
WITH doomed AS (
    DELETE FROM throughput_minutes
    WHERE (minute, slot) IN (
        SELECT minute, slot FROM throughput_minutes
        WHERE minute < coalesce(@now::timestamptz, now()) - @keep
        ORDER BY minute, slot
        LIMIT @batch
        FOR UPDATE SKIP LOCKED)
    RETURNING audio_seconds, shards_succeeded, attempts_failed
), folded AS (
    INSERT INTO throughput_archive AS a (id, audio_seconds, shards_succeeded, attempts_failed, rows_folded)
    SELECT true, sum(audio_seconds), sum(shards_succeeded), sum(attempts_failed), count(*)
    FROM doomed HAVING count(*) > 0
    ON CONFLICT (id) DO UPDATE
    SET audio_seconds = a.audio_seconds + EXCLUDED.audio_seconds,
        shards_succeeded = a.shards_succeeded + EXCLUDED.shards_succeeded,
        attempts_failed = a.attempts_failed + EXCLUDED.attempts_failed,
        rows_folded = a.rows_folded + EXCLUDED.rows_folded
)
SELECT count(*) AS deleted FROM doomed;
