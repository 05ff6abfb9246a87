-- `workers-bench soak`: fault injection against real nodes, and the checks of its report.

-- name: SoakBackendPick
-- A random client connection of the soak's nodes (@application_name), not this one: the one to terminate.
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND backend_type = 'client backend' AND application_name = @application_name
ORDER BY random() LIMIT 1;

-- name: BackendTerminate
SELECT pg_terminate_backend(@pid) AS terminated;

-- name: SoakWorkersRunning
-- Workers of the soak's nodes (@nodes) that hold a shard, or, when none does, every running one.
SELECT worker FROM shard_attempts WHERE outcome = 'running' AND node = ANY(@nodes)
UNION
SELECT id FROM workers WHERE state = 'running' AND node = ANY(@nodes)
  AND NOT EXISTS (SELECT 1 FROM shard_attempts WHERE outcome = 'running' AND node = ANY(@nodes));

-- name: ShardsOpenCount
SELECT count(*) AS open_shards FROM shards WHERE corpus_id = @c AND state IN ('queued', 'running');

-- name: ShardsOpenInQueueCount
SELECT count(*) AS open_shards FROM shards WHERE queue = @queue AND state IN ('queued', 'running');

-- name: SoakReport
-- The soak's corpora (@ids): shards, attempts, duplicates, segments of unfinished shards, and
-- seconds of audio neither in a finished shard nor listed as failed (lost).
WITH sh AS (SELECT id, corpus_id, state FROM shards WHERE corpus_id = ANY(@ids)),
att AS (SELECT a.* FROM shard_attempts a JOIN sh ON sh.id = a.shard_id),
per_file AS (
  SELECT f.corpus_id, f.file_index, f.duration_seconds,
         coalesce((SELECT sum(i.end_seconds - i.start_seconds) FROM shard_items i JOIN shards s ON s.id = i.shard_id
                   WHERE i.corpus_id = f.corpus_id AND i.file_index = f.file_index AND s.state IN ('succeeded', 'dead')), 0) AS covered
  FROM files f WHERE f.corpus_id = ANY(@ids) AND f.duration_seconds IS NOT NULL)
SELECT
  (SELECT count(*) FROM sh) AS shards,
  (SELECT count(*) FROM sh WHERE state = 'succeeded') AS succeeded,
  (SELECT count(*) FROM sh WHERE state = 'dead') AS dead,
  (SELECT count(*) FROM att) AS attempts,
  (SELECT count(*) FROM att WHERE attempt > 1) AS retries,
  (SELECT count(*) FROM att WHERE outcome = 'lease_expired') AS rescues,
  (SELECT count(*) FROM att WHERE outcome = 'failed') AS failed_attempts,
  (SELECT count(*) FROM (SELECT shard_id FROM att WHERE outcome = 'succeeded' GROUP BY shard_id HAVING count(*) > 1) d) AS duplicate_shards,
  (SELECT count(*) - count(DISTINCT (corpus_id, file_index, start_seconds, end_seconds)) FROM segments WHERE corpus_id = ANY(@ids)) AS duplicate_segments,
  (SELECT count(*) FROM segments g JOIN shards s ON s.id = g.shard_id WHERE g.corpus_id = ANY(@ids) AND s.state <> 'succeeded') AS orphan_segments,
  (SELECT coalesce(sum(greatest(0, duration_seconds - covered)), 0) FROM per_file)::float8 AS lost_seconds,
  (SELECT coalesce(sum(duration_seconds), 0) FROM per_file)::float8 AS audio_seconds,
  (SELECT count(*) FROM segments WHERE corpus_id = ANY(@ids)) AS segments,
  (SELECT count(*) FROM file_failures WHERE corpus_id = ANY(@ids)) AS file_failures;

-- name: SegmentsCount
SELECT count(*) AS segments FROM segments WHERE corpus_id = @c;

-- name: SoakClockOffsetMax
-- The largest clock offset any of the soak's nodes' workers reported (migration 008), in ms.
SELECT max(abs(clock_offset_ms))::float8 AS max_offset_ms FROM workers WHERE node LIKE 'soak-%';

-- name: SoakSegmentDifferences
-- Segments of @other that do not match @reference's, file by file and in order (1 ms tolerance).
WITH a AS (SELECT f.path, g.start_seconds, g.end_seconds,
                  row_number() OVER (PARTITION BY f.path ORDER BY g.start_seconds, g.end_seconds) AS n
           FROM segments g JOIN files f ON f.corpus_id = g.corpus_id AND f.file_index = g.file_index WHERE g.corpus_id = @reference),
     b AS (SELECT f.path, g.start_seconds, g.end_seconds,
                  row_number() OVER (PARTITION BY f.path ORDER BY g.start_seconds, g.end_seconds) AS n
           FROM segments g JOIN files f ON f.corpus_id = g.corpus_id AND f.file_index = g.file_index WHERE g.corpus_id = @other)
SELECT count(*) AS differences FROM a FULL JOIN b ON a.path = b.path AND a.n = b.n
WHERE a.path IS NULL OR b.path IS NULL
   OR abs(a.start_seconds - b.start_seconds) >= 1e-3 OR abs(a.end_seconds - b.end_seconds) >= 1e-3;

-- name: SoakChangedFileCheck
-- A corpus whose file changed under the fleet (@c): its unfinished shards, and the seconds listed as failed.
SELECT (SELECT count(*) FROM shards WHERE corpus_id = @c AND state <> 'succeeded') AS unfinished,
       (SELECT coalesce(sum(end_seconds - start_seconds), 0) FROM file_failures WHERE corpus_id = @c)::float8 AS failed_seconds;

-- name: StandbySynchronousSet
-- Synchronous: a commit is on both servers before it is acknowledged, so a failover loses nothing. Set
-- before the standby is copied: postgresql.auto.conf is copied with the data, so every promoted standby
-- (and every standby copied from it) keeps the setting; ALTER SYSTEM itself is not replicated.
-- ALTER SYSTEM takes no parameters: the name is SoakDatabasePair.StandbyName's (a test checks they agree).
ALTER SYSTEM SET synchronous_standby_names = 'workers_standby';
ALTER SYSTEM SET synchronous_commit = 'on';
SELECT pg_reload_conf();

-- name: StandbySynchronousCount
SELECT count(*) AS standbys FROM pg_stat_replication WHERE application_name = @name AND sync_state = 'sync';
