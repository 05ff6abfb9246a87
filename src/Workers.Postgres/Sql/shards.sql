-- Shard queue statements.
-- Time (issue 11): every comparison uses the database's clock, coalesce(@now::timestamptz, now()).
-- Production never passes @now (NULL), so the whole fleet agrees on one clock whatever a node's
-- own clock says; tests pin @now through the very same statements (DbClock).

-- name: ShardClaim
-- Claim up to @max claimable shards of @queues, highest priority first, then oldest. SKIP
-- LOCKED lets any number of workers claim concurrently without waiting on each other; the
-- partial index shards_claimable keeps this cheap however many shards are finished.
WITH next AS (
    SELECT id
    FROM shards
    WHERE state = 'queued' AND queue = ANY(@queues) AND not_before <= coalesce(@now::timestamptz, now())
      AND NOT EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = shards.queue)
      -- Only shards of pipelines this worker has loaded (009); NULL: any pipeline.
      AND (@pipelines::text[] IS NULL
           OR EXISTS (SELECT 1 FROM corpora c WHERE c.id = shards.corpus_id AND c.pipeline = ANY(@pipelines::text[])))
    ORDER BY priority DESC, id
    LIMIT @max
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE shards s
    SET state = 'running',
        attempt = s.attempt + 1,
        lease_owner = @owner,
        lease_expires_at = coalesce(@now::timestamptz, now()) + @lease,
        heartbeat_at = coalesce(@now::timestamptz, now()),
        started_at = coalesce(@now::timestamptz, now()),
        finished_at = NULL,
        processed_seconds = 0
    FROM next
    WHERE s.id = next.id
    RETURNING s.id, s.corpus_id, s.attempt, s.max_attempts, s.queue, s.audio_seconds, s.item_count
), attempts AS (
    INSERT INTO shard_attempts (shard_id, attempt, worker, node, gpu, execution_provider, started_at)
    SELECT id, attempt, @owner, @node, @gpu, @provider, coalesce(@now::timestamptz, now()) FROM claimed
)
SELECT id, corpus_id, attempt, max_attempts, queue, audio_seconds, item_count,
       (SELECT c.pipeline FROM corpora c WHERE c.id = claimed.corpus_id) AS pipeline
FROM claimed ORDER BY id;

-- name: ShardHeartbeat
-- Renew the lease, fenced: only the owner of this very attempt, while the lease is unexpired.
UPDATE shards
SET lease_expires_at = coalesce(@now::timestamptz, now()) + @lease, heartbeat_at = coalesce(@now::timestamptz, now()), processed_seconds = @processed
WHERE id = @id AND attempt = @attempt AND lease_owner = @owner AND state = 'running'
  AND lease_expires_at > coalesce(@now::timestamptz, now());

-- name: ShardComplete
-- First statement of the completing transaction: takes the row lock (so the rescuer cannot
-- slip in) and checks the fence. Zero rows means the lease is lost: roll back, write nothing.
UPDATE shards
SET state = 'succeeded', finished_at = coalesce(@now::timestamptz, now()), lease_owner = NULL, lease_expires_at = NULL,
    processed_seconds = audio_seconds, segments = @segments, last_error = NULL
WHERE id = @id AND attempt = @attempt AND lease_owner = @owner AND state = 'running'
  AND lease_expires_at > coalesce(@now::timestamptz, now())
RETURNING coalesce(@now::timestamptz, now()) AS finished_at;

-- name: ShardFail
-- Fenced failure: back to queued after @retry_delay, or dead once the budget is spent.
UPDATE shards
SET state = CASE WHEN attempt >= max_attempts THEN 'dead'::shard_state ELSE 'queued'::shard_state END,
    not_before = CASE WHEN attempt >= max_attempts THEN not_before ELSE coalesce(@now::timestamptz, now()) + @retry_delay END,
    finished_at = coalesce(@now::timestamptz, now()), lease_owner = NULL, lease_expires_at = NULL, last_error = @error
WHERE id = @id AND attempt = @attempt AND lease_owner = @owner AND state = 'running'
  AND lease_expires_at > coalesce(@now::timestamptz, now())
RETURNING state::text AS state;

-- name: ShardRelease
-- Give a claimed shard back without spending an attempt (drain on shutdown): the fencing
-- token stays monotonic, so the budget grows by one instead.
UPDATE shards
SET state = 'queued', not_before = coalesce(@now::timestamptz, now()), max_attempts = max_attempts + 1,
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = @id AND attempt = @attempt AND lease_owner = @owner AND state = 'running';

-- name: ShardRescueExpired
-- Re-queue running shards whose lease expired (their worker died or froze). An expired shard
-- whose budget is spent is dead. The attempt row records the expiry.
WITH expired AS (
    SELECT id FROM shards
    WHERE state = 'running' AND lease_expires_at < coalesce(@now::timestamptz, now())
    ORDER BY lease_expires_at
    LIMIT @max
    FOR UPDATE SKIP LOCKED
), rescued AS (
    UPDATE shards s
    SET state = CASE WHEN s.attempt >= s.max_attempts THEN 'dead'::shard_state ELSE 'queued'::shard_state END,
        not_before = coalesce(@now::timestamptz, now()), lease_owner = NULL, lease_expires_at = NULL, finished_at = coalesce(@now::timestamptz, now()),
        last_error = 'lease expired: worker ' || s.lease_owner || ' stopped heartbeating'
    FROM expired
    WHERE s.id = expired.id
    RETURNING s.id, s.attempt, s.state
), attempts AS (
    UPDATE shard_attempts a
    SET outcome = 'lease_expired', finished_at = coalesce(@now::timestamptz, now()), error_type = 'LeaseExpired',
        error_message = 'lease expired without a heartbeat; shard re-queued by the rescuer'
    FROM rescued r
    WHERE a.shard_id = r.id AND a.attempt = r.attempt AND a.outcome = 'running'
), counted AS (
    -- An expired lease is a failed attempt too: counted in its minute (throughput_minutes, 007).
    INSERT INTO throughput_minutes AS t (minute, slot, attempts_failed)
    SELECT date_bin('1 minute', coalesce(coalesce(@now::timestamptz, now())::timestamptz, now()), timestamptz '2000-01-01 00:00:00+00'), 0, count(*) FROM rescued HAVING count(*) > 0
    ON CONFLICT (minute, slot) DO UPDATE SET attempts_failed = t.attempts_failed + EXCLUDED.attempts_failed
)
SELECT id, attempt, state::text AS state FROM rescued;

-- name: ThroughputAdd
-- The LAST statement of the COMPLETE and FAIL transactions (see migration 007 for why): adds to
-- the minute's row for @slot (shard id mod 64), creating it on its first event. Every worker
-- finishing in that minute and slot updates this one row, so its lock must be held only for the commit.
INSERT INTO throughput_minutes AS t (minute, slot, audio_seconds, shards_succeeded, attempts_failed)
VALUES (date_bin('1 minute', coalesce(coalesce(@now::timestamptz, now())::timestamptz, now()), timestamptz '2000-01-01 00:00:00+00'), @slot, @audio, @succeeded, @failed)
ON CONFLICT (minute, slot) DO UPDATE
SET audio_seconds = t.audio_seconds + EXCLUDED.audio_seconds,
    shards_succeeded = t.shards_succeeded + EXCLUDED.shards_succeeded,
    attempts_failed = t.attempts_failed + EXCLUDED.attempts_failed;

-- name: ShardAttemptSucceededBy
-- After a refused COMPLETE: did this worker's own earlier try of it commit (answer lost with the connection)?
SELECT EXISTS (SELECT 1 FROM shard_attempts
               WHERE shard_id = @id AND attempt = @attempt AND worker = @worker AND outcome = 'succeeded') AS succeeded;

-- name: ShardAttemptFinish
UPDATE shard_attempts
SET finished_at = coalesce(@now::timestamptz, now()), outcome = @outcome, error_type = @error_type, error_message = @error_message,
    error_stack = @error_stack, log_tail = @log_tail
WHERE shard_id = @id AND attempt = @attempt;

-- name: ShardItemsGet
SELECT i.ordinal, i.file_index, f.path, i.start_seconds, i.end_seconds, c.root_dir, f.duration_seconds
FROM shard_items i
JOIN files f ON f.corpus_id = i.corpus_id AND f.file_index = i.file_index
JOIN corpora c ON c.id = i.corpus_id
WHERE i.shard_id = @id
ORDER BY i.ordinal;

-- name: ShardsActiveCount
-- Whether anything in @queues is still to do: drives `run --until-idle`. With @pipelines, only
-- shards of those pipelines count (a worker does not wait for shards it cannot take).
SELECT count(*) FILTER (WHERE state = 'queued') AS queued,
       count(*) FILTER (WHERE state = 'running') AS running
FROM shards
WHERE state IN ('queued', 'running') AND queue = ANY(@queues)
  AND (@pipelines::text[] IS NULL
       OR EXISTS (SELECT 1 FROM corpora c WHERE c.id = shards.corpus_id AND c.pipeline = ANY(@pipelines::text[])));

-- name: ShardsRerunByIds
UPDATE shards
SET state = 'queued', not_before = coalesce(@now::timestamptz, now()), max_attempts = attempt + @budget, last_error = NULL, finished_at = NULL,
    processed_seconds = 0, segments = 0
WHERE corpus_id = @corpus_id AND id = ANY(@ids) AND state IN ('dead', 'succeeded', 'cancelled')
RETURNING id;

-- name: ShardsCancelCorpus
-- Running shards are cancelled too: their workers' fenced complete then finds state <> running
-- and writes nothing.
WITH cancelled AS (
    UPDATE shards
    SET state = 'cancelled', finished_at = coalesce(@now::timestamptz, now()), lease_owner = NULL, lease_expires_at = NULL
    WHERE corpus_id = @corpus_id AND state IN ('queued', 'running')
    RETURNING id, attempt
), attempts AS (
    UPDATE shard_attempts a SET outcome = 'cancelled', finished_at = coalesce(@now::timestamptz, now())
    FROM cancelled c WHERE a.shard_id = c.id AND a.attempt = c.attempt AND a.outcome = 'running'
)
SELECT id FROM cancelled;

-- fragment: ShardFilter
-- The shard filter of the dashboard's list (DashboardShardsPage) and of re-run by filter
-- (ShardsRerunDeadByFilter), written once so the two always select the same shards. Every part
-- is optional (NULL). worker/node match any attempt of the shard (a shard_attempts primary-key
-- probe per shard); file finds matching paths first, then their shards through shard_items_file.
-- The file match is a case-insensitive substring (LIKE's % _ \ in it are escaped, so they match
-- themselves), written as `lower(path) LIKE pattern` so that the trigram index files_path_trgm
-- (migration 010) serves it: the pattern is a constant when the statement is planned with its
-- values, so only the matching paths are read, not every path of the corpus.
  AND (@corpus_id::bigint IS NULL OR s.corpus_id = @corpus_id::bigint)
  AND (@queue::text IS NULL OR s.queue = @queue::text)
  AND (@worker::text IS NULL OR EXISTS (SELECT 1 FROM shard_attempts a WHERE a.shard_id = s.id AND a.worker = @worker::text))
  AND (@node::text IS NULL OR EXISTS (SELECT 1 FROM shard_attempts a WHERE a.shard_id = s.id AND a.node = @node::text))
  AND (@file::text IS NULL OR s.id IN (
        SELECT i.shard_id
        FROM files f
        JOIN shard_items i ON i.corpus_id = f.corpus_id AND i.file_index = f.file_index
        WHERE (@corpus_id::bigint IS NULL OR f.corpus_id = @corpus_id::bigint)
          AND lower(f.path) LIKE '%' || replace(replace(replace(lower(@file::text), '\', '\\'), '%', '\%'), '_', '\_') || '%'))

-- name: ShardsRerunDeadByFilter
-- Set-based re-run of every DEAD shard matching the filter (the same filter as the dashboard's
-- shard list, DashboardShardsPage; every part optional, the caller insists on at least a corpus
-- or a queue, or an explicit "all"): one UPDATE, fresh budget, history kept. Also a corpus's
-- "re-run failed" (corpus only). Progress and the segment count go back to zero (the segments
-- themselves are deleted by the caller), so progress drops at once, not when the shard is claimed again.
UPDATE shards s
SET state = 'queued', not_before = coalesce(@now::timestamptz, now()), max_attempts = s.attempt + @budget, last_error = NULL, finished_at = NULL,
    processed_seconds = 0, segments = 0
WHERE s.state = 'dead'
  {{ShardFilter}}
RETURNING s.id;

-- name: CorpusLockForNewShard
-- First statement of rerun-failed-files: locks the corpus row (two concurrent calls serialize
-- here, so they cannot both take the next ordinal) and reads what the new shard inherits.
SELECT c.queue, c.priority, c.cancelled_at IS NOT NULL AS cancelled,
       (SELECT COALESCE(max(s.ordinal), -1) + 1 FROM shards s WHERE s.corpus_id = c.id) AS next_ordinal
FROM corpora c WHERE c.id = @corpus_id
FOR UPDATE;

-- name: FileFailuresTakeSucceeded
-- The files that failed while processed in shards that otherwise succeeded: deleted and returned
-- in one statement, so the failed-file count drops exactly when they are re-queued.
DELETE FROM file_failures ff
USING shards s
WHERE ff.corpus_id = @corpus_id AND s.id = ff.shard_id AND s.state = 'succeeded'
RETURNING ff.file_index, ff.start_seconds, ff.end_seconds, ff.error, ff.shard_id;

-- name: ShardInsertOne
INSERT INTO shards (corpus_id, ordinal, queue, priority, audio_seconds, item_count, max_attempts, not_before, created_at)
VALUES (@corpus_id, @ordinal, @queue, @priority, @audio, @items, @budget, coalesce(@now::timestamptz, now()), coalesce(@now::timestamptz, now()))
RETURNING id;

-- name: ShardItemsInsertRanges
INSERT INTO shard_items (shard_id, ordinal, corpus_id, file_index, start_seconds, end_seconds)
SELECT @shard_id, r.ord - 1, @corpus_id, r.file_index, r.start_seconds, r.end_seconds
FROM unnest(@file_indexes::integer[], @starts::double precision[], @ends::double precision[])
     WITH ORDINALITY AS r(file_index, start_seconds, end_seconds, ord);

-- name: CorpusShardCountAdd
UPDATE corpora SET shards = shards + @added WHERE id = @corpus_id;

-- name: SegmentsDeleteForShards
-- The stages' results go with their segments, and their count with them (009).
WITH results AS (DELETE FROM segment_results WHERE shard_id = ANY(@ids)),
     counts AS (UPDATE shards SET stage_results = 0 WHERE id = ANY(@ids) AND stage_results <> 0)
DELETE FROM segments WHERE shard_id = ANY(@ids);

-- name: ShardsNotify
SELECT pg_notify('workers_shards', @queue);

-- name: ShardsListen
-- The channel ShardsNotify signals (ShardNotificationListener.Channel).
LISTEN workers_shards;

-- name: SegmentsCopy
COPY segments (corpus_id, shard_id, file_index, start_seconds, end_seconds) FROM STDIN (FORMAT BINARY);

-- name: SegmentResultsCopy
COPY segment_results (corpus_id, shard_id, file_index, start_seconds, stage, result) FROM STDIN (FORMAT BINARY);

-- name: FileFailuresDeleteForShard
DELETE FROM file_failures WHERE shard_id = @id;

-- name: FileFailuresCopy
COPY file_failures (corpus_id, file_index, shard_id, attempt, start_seconds, end_seconds, error, created_at) FROM STDIN (FORMAT BINARY);
