-- Corpus statements: enqueue writes, status reads.

-- name: CorpusInsert
INSERT INTO corpora (name, source, source_kind, root_dir, pipeline, queue, priority, shard_seconds,
                     files, failed_files, audio_seconds, shards, created_at)
VALUES (@name, @source, @source_kind, @root_dir, @pipeline, @queue, @priority, @shard_seconds,
        @files, @failed_files, @audio_seconds, @shards, coalesce(@now::timestamptz, now()))
RETURNING id, created_at; -- created_at: the database's time, which the COPYed shards take as created_at and not_before

-- name: ShardIdsReserve
-- Ids for the shards about to be COPYed, so their items can reference them in the same COPY pass.
SELECT nextval(pg_get_serial_sequence('shards', 'id')) AS id FROM generate_series(1, @count);

-- name: CorpusGetByName
SELECT id, name, source, source_kind, root_dir, pipeline, queue, priority, shard_seconds, files,
       failed_files, audio_seconds, shards, cancelled_at, created_at
FROM corpora WHERE name = @name;

-- name: CorpusList
SELECT id, name, source, source_kind, root_dir, pipeline, queue, priority, shard_seconds, files,
       failed_files, audio_seconds, shards, cancelled_at, created_at
FROM corpora ORDER BY id;

-- name: CorpusShardSummary
-- Per-state counts and progress from the (corpus_id, state) index: one corpus's shards only.
SELECT state::text AS state, count(*)::int AS shards, COALESCE(sum(processed_seconds), 0) AS processed_seconds,
       COALESCE(sum(segments), 0)::bigint AS segments
FROM shards WHERE corpus_id = @corpus_id GROUP BY state;

-- name: CorpusFailedFiles
-- Files that failed at enqueue (could not be probed) and files that failed while processed.
SELECT f.path, f.error FROM files f
WHERE f.corpus_id = @corpus_id AND f.error IS NOT NULL
UNION ALL
SELECT f.path, ff.error FROM file_failures ff
JOIN files f ON f.corpus_id = ff.corpus_id AND f.file_index = ff.file_index
WHERE ff.corpus_id = @corpus_id
ORDER BY 1
LIMIT @max;

-- name: CorpusCancel
UPDATE corpora SET cancelled_at = coalesce(@now::timestamptz, now()) WHERE id = @corpus_id AND cancelled_at IS NULL;

-- name: FilesCopy
COPY files (corpus_id, file_index, path, duration_seconds, error) FROM STDIN (FORMAT BINARY);

-- name: ShardsCopy
COPY shards (id, corpus_id, ordinal, queue, priority, audio_seconds, item_count, max_attempts, not_before, created_at) FROM STDIN (FORMAT BINARY);

-- name: ShardItemsCopy
COPY shard_items (shard_id, ordinal, corpus_id, file_index, start_seconds, end_seconds) FROM STDIN (FORMAT BINARY);

-- name: CorpusDelete
-- Removes a corpus and, by cascade, its files, shards, items, attempts and segments (benchmarks).
DELETE FROM corpora WHERE id = @corpus_id;

-- name: ShardsResetForBench
-- Puts every shard of a corpus back to queued (benchmarks only).
UPDATE shards SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, not_before = coalesce(@now::timestamptz, now())
WHERE corpus_id = @corpus_id;
