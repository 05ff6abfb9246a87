-- Dashboard statements: read models for the web pages, the API and /metrics, plus the queue
-- pause switch and the audit trail. Every filter is a parameter; a filter left out is passed as
-- NULL and folded away by the planner (Npgsql's unnamed statements are planned with the values).

-- name: DashboardCorpusShardCounts
-- Shards by state, processed audio and segments, per corpus, for every corpus at once. One pass
-- over shards (O(shards): ~10 ms at 54,000 shards); it replaces one query per corpus.
SELECT corpus_id, state::text AS state, count(*)::int AS shards, COALESCE(sum(processed_seconds), 0) AS processed_seconds,
       COALESCE(sum(segments), 0)::bigint AS segments
FROM shards
GROUP BY corpus_id, state;

-- name: DashboardFileFailureCounts
-- Files that failed while processed, per corpus (file_failures holds failures only: small).
SELECT corpus_id, count(*)::int AS failures FROM file_failures GROUP BY corpus_id;

-- name: DashboardRecentRate
-- Audio seconds of shards that succeeded within @window (database clock), per corpus: the fleet's recent rate. Reads
-- only the window's rows through the partial index shards_succeeded_finished.
SELECT corpus_id, COALESCE(sum(audio_seconds), 0) AS audio_seconds
FROM shards
WHERE state = 'succeeded' AND finished_at > coalesce(@now::timestamptz, now()) - @window
GROUP BY corpus_id;

-- name: DashboardShardsPage
-- One page of shards in id order (keyset: id > @after, never OFFSET), every filter optional.
-- worker/node match any attempt of the shard (shard_attempts primary key probe per shard). The
-- file filter first finds matching files (a scan of files, of one corpus when @corpus_id is
-- given: ~400,000 paths in tens of ms), then their shards through shard_items_file.
SELECT s.id, s.corpus_id, c.name AS corpus, s.ordinal, s.queue, s.priority, s.state::text AS state, s.audio_seconds, s.item_count,
       s.attempt, s.max_attempts, s.processed_seconds, s.segments, s.lease_owner, s.last_error,
       s.not_before, s.started_at, s.finished_at
FROM shards s
JOIN corpora c ON c.id = s.corpus_id
WHERE s.id > @after
  AND (@state::text IS NULL OR s.state = @state::text::shard_state)
  {{ShardFilter}}
ORDER BY s.id
LIMIT @limit;

-- name: DashboardShardGet
SELECT s.id, s.corpus_id, c.name AS corpus, s.ordinal, s.queue, s.priority, s.state::text AS state, s.audio_seconds, s.item_count,
       s.attempt, s.max_attempts, s.processed_seconds, s.segments, s.lease_owner, s.last_error,
       s.not_before, s.started_at, s.finished_at, s.lease_expires_at, s.heartbeat_at, s.created_at, c.root_dir
FROM shards s JOIN corpora c ON c.id = s.corpus_id
WHERE s.id = @id;

-- name: DashboardShardItems
SELECT i.ordinal, i.file_index, f.path, i.start_seconds, i.end_seconds
FROM shard_items i
JOIN files f ON f.corpus_id = i.corpus_id AND f.file_index = i.file_index
WHERE i.shard_id = @id
ORDER BY i.ordinal
LIMIT @max;

-- name: DashboardShardAttempts
-- Newest first; bounded (a shard re-run many times keeps every attempt).
SELECT attempt, worker, node, gpu, execution_provider, started_at, finished_at, outcome, error_type, error_message,
       error_stack, log_tail
FROM shard_attempts
WHERE shard_id = @id
ORDER BY attempt DESC
LIMIT @max;

-- name: DashboardShardFileFailures
SELECT f.path, ff.attempt, ff.start_seconds, ff.end_seconds, ff.error
FROM file_failures ff
JOIN files f ON f.corpus_id = ff.corpus_id AND f.file_index = ff.file_index
WHERE ff.shard_id = @id
ORDER BY ff.attempt DESC, f.path
LIMIT @max;

-- name: DashboardShardSegmentCount
-- Segments written for the shard (segments_shard index), besides the count the shard row keeps.
SELECT count(*) AS segments FROM segments WHERE shard_id = @id;

-- name: DashboardShardStateCounts
-- /metrics: shards by state, fleet-wide, with processed audio. One pass over shards (O(shards)).
SELECT state::text AS state, count(*) AS shards, COALESCE(sum(processed_seconds), 0) AS processed_seconds FROM shards GROUP BY state;

-- name: DashboardCorpusTotals
SELECT count(*) AS corpora, COALESCE(sum(audio_seconds), 0) AS audio_seconds FROM corpora;

-- name: QueuePausedList
SELECT queue, paused_by, paused_at FROM paused_queues ORDER BY queue;

-- name: QueuePause
INSERT INTO paused_queues (queue, paused_by, paused_at) VALUES (@queue, @actor, coalesce(@now::timestamptz, now()))
ON CONFLICT (queue) DO NOTHING;

-- name: QueueResume
DELETE FROM paused_queues WHERE queue = @queue;

-- name: AuditInsert
INSERT INTO audit_log (at, actor, remote_address, action, target, rows_affected, detail)
VALUES (coalesce(@now::timestamptz, now()), @actor, @remote, @action, @target, @rows, @detail)
RETURNING id;

-- name: AuditPage
-- Newest first, keyset on id (id < @before).
SELECT id, at, actor, remote_address, action, target, rows_affected, detail
FROM audit_log
WHERE id < @before
ORDER BY id DESC
LIMIT @limit;

-- name: DashboardShardSegments
-- The first @max segments of one shard (segments_shard index; a shard holds hundreds to a few
-- thousand segments, sorted in memory), for the shard page.
SELECT s.file_index, f.path, s.start_seconds, s.end_seconds
FROM segments s
JOIN files f ON f.corpus_id = s.corpus_id AND f.file_index = s.file_index
WHERE s.shard_id = @id
ORDER BY s.file_index, s.start_seconds
LIMIT @max;

-- name: DashboardFailedFileCorpora
-- Corpora with failed files (at enqueue, counted in corpora.failed_files, or while processed, in
-- file_failures: failures only, small), by name, bounded; then the enqueue failures alone, which
-- DashboardFailedFilesPage's @enqueue_failures needs (so no DashboardCorpusEnqueueFailures per corpus).
SELECT c.id, c.name, c.failed_files + COALESCE(x.n, 0) AS failed_files, c.failed_files AS enqueue_failed_files
FROM corpora c
LEFT JOIN (SELECT corpus_id, count(*)::int AS n FROM file_failures GROUP BY corpus_id) x ON x.corpus_id = c.id
WHERE c.failed_files + COALESCE(x.n, 0) > 0
ORDER BY c.name
LIMIT @max;

-- name: DashboardCorpusEnqueueFailures
SELECT failed_files FROM corpora WHERE id = @corpus_id;

-- name: DashboardFailedFilesPage
-- One page of a corpus's failed files in file order (keyset: file_index > @after), each with its
-- newest processing failure (error, shard, attempt) or else its enqueue error. Processing failures
-- come through file_failures_corpus; enqueue failures through the files primary key filtered on
-- error, which walks the corpus's files until @limit are found (worst case all ~400,000 paths of
-- a corpus when few failed, ~250 ms), so that walk only runs when @enqueue_failures (the caller
-- reads corpora.failed_files first): false is folded away when the statement is planned with its
-- values, so the files are not read at all (a run-time one-time filter would still start
-- parallel workers for a scan that never runs, ~80 ms).
WITH ids AS (
    (SELECT DISTINCT file_index FROM file_failures
     WHERE corpus_id = @corpus_id AND file_index > @after ORDER BY file_index LIMIT @limit)
    UNION
    (SELECT file_index FROM files
     WHERE corpus_id = @corpus_id AND file_index > @after AND error IS NOT NULL
       AND @enqueue_failures::boolean
     ORDER BY file_index LIMIT @limit)
)
SELECT f.file_index, f.path, COALESCE(ff.error, f.error) AS error, ff.shard_id, ff.attempt
FROM (SELECT file_index FROM ids ORDER BY file_index LIMIT @limit) i
JOIN files f ON f.corpus_id = @corpus_id AND f.file_index = i.file_index
LEFT JOIN LATERAL (
    SELECT x.error, x.shard_id, x.attempt FROM file_failures x
    WHERE x.corpus_id = @corpus_id AND x.file_index = i.file_index
    ORDER BY x.created_at DESC, x.attempt DESC
    LIMIT 1) ff ON true
ORDER BY f.file_index;
