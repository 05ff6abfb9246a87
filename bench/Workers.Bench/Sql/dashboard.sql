-- `workers-bench dashboard`: a mid-run state of a 58,760-shard corpus, written with set-based
-- statements (bench data, not a code path of the product), and the figures it reports.

-- name: BenchStateSeed
-- @c: the corpus; @succ: how many shards (by ordinal) are succeeded (40%).
-- 40% succeeded, finished over the last hour, one succeeded attempt each.
UPDATE shards SET state = 'succeeded', attempt = 1, processed_seconds = audio_seconds, segments = 20,
       started_at = now() - interval '2 hours', finished_at = now() - (ordinal % 3600) * interval '1 second'
WHERE corpus_id = @c AND ordinal < @succ;
-- 200 running, leased by bench workers.
UPDATE shards SET state = 'running', attempt = 1, lease_owner = 'bench-node' || lpad((ordinal % 25)::text, 2, '0') || '/1234/' || (ordinal % 8),
       lease_expires_at = now() + interval '5 minutes', heartbeat_at = now(), started_at = now() - interval '10 minutes',
       processed_seconds = audio_seconds / 2
WHERE corpus_id = @c AND ordinal >= @succ AND ordinal < @succ + 200;
-- 600 dead after three failed attempts.
UPDATE shards SET state = 'dead', attempt = 3, last_error = 'OnnxRuntimeException: CUDA failure 2: out of memory (bench)',
       started_at = now() - interval '1 hour', finished_at = now() - (ordinal % 3000) * interval '1 second'
WHERE corpus_id = @c AND ordinal >= @succ + 200 AND ordinal < @succ + 800;

INSERT INTO shard_attempts (shard_id, attempt, worker, node, gpu, execution_provider, started_at, finished_at, outcome)
SELECT id, 1, 'bench-node' || lpad((ordinal % 25)::text, 2, '0') || '/1234/' || (ordinal % 8), 'bench-node' || lpad((ordinal % 25)::text, 2, '0'),
       (ordinal % 8)::text, 'CUDAExecutionProvider', started_at, finished_at, 'succeeded'
FROM shards WHERE corpus_id = @c AND state = 'succeeded';
INSERT INTO shard_attempts (shard_id, attempt, worker, node, gpu, execution_provider, started_at, outcome)
SELECT id, 1, lease_owner, split_part(lease_owner, '/', 1), (ordinal % 8)::text, 'CUDAExecutionProvider', started_at, 'running'
FROM shards WHERE corpus_id = @c AND state = 'running';
INSERT INTO shard_attempts (shard_id, attempt, worker, node, gpu, execution_provider, started_at, finished_at, outcome,
                            error_type, error_message, error_stack, log_tail)
SELECT s.id, a, 'bench-node' || lpad(((s.ordinal + a) % 25)::text, 2, '0') || '/1234/' || (s.ordinal % 8),
       'bench-node' || lpad(((s.ordinal + a) % 25)::text, 2, '0'), (s.ordinal % 8)::text, 'CUDAExecutionProvider',
       s.started_at, s.finished_at, 'failed', 'OnnxRuntimeException', 'CUDA failure 2: out of memory (bench)',
       repeat('   at Workers.Onnx.OnnxSession.Run(...)' || chr(10), 30), repeat('log line' || chr(10), 50)
FROM shards s CROSS JOIN generate_series(1, 3) a WHERE s.corpus_id = @c AND s.state = 'dead';

-- 20 segments per succeeded shard, spread over its items.
INSERT INTO segments (corpus_id, shard_id, file_index, start_seconds, end_seconds)
SELECT @c, i.shard_id, i.file_index, i.start_seconds + g * 0.5, i.start_seconds + g * 0.5 + 0.25
FROM shard_items i JOIN shards s ON s.id = i.shard_id AND s.state = 'succeeded' AND s.corpus_id = @c
CROSS JOIN generate_series(0, 2) g
WHERE i.ordinal < 7 AND i.end_seconds - i.start_seconds > 2;

-- 2,000 files that failed while their (succeeded) shard was processed.
INSERT INTO file_failures (corpus_id, file_index, shard_id, attempt, start_seconds, end_seconds, error, created_at)
SELECT @c, i.file_index, i.shard_id, 1, i.start_seconds, i.end_seconds, 'invalid data found when processing input (bench)', now()
FROM shard_items i JOIN shards s ON s.id = i.shard_id AND s.state = 'succeeded' AND s.corpus_id = @c
WHERE i.ordinal = 0 AND s.ordinal % 10 = 0 LIMIT 2000;

-- 200 workers on 25 nodes (8 GPU slots each), one slot on CPU, one crash-looping; their GPUs.
INSERT INTO workers (id, node, pid, slot, gpu_index, gpu_uuid, gpu_name, execution_provider, threads, version, queues,
                     state, started_at, heartbeat_at, current_shard, current_attempt, shards_completed, audio_seconds_done, last_rate, detail)
SELECT 'bench-node' || lpad(n::text, 2, '0') || '/1234/' || g, 'bench-node' || lpad(n::text, 2, '0'), 1234, g, g::text,
       'GPU-' || n || '-' || g, 'NVIDIA H100 80GB HBM3',
       CASE WHEN n = 3 AND g = 5 THEN 'CPUExecutionProvider' ELSE 'CUDAExecutionProvider' END, 4, 'bench', ARRAY['default'],
       CASE WHEN n = 4 AND g = 2 THEN 'crash_looping' ELSE 'running' END, now() - interval '3 hours', now() - interval '2 seconds',
       NULL, NULL, 90, 90 * 1800.0, 1500.0, CASE WHEN n = 4 AND g = 2 THEN 'exited 3 times in 60 s: CUDA error (bench)' END
FROM generate_series(0, 24) n CROSS JOIN generate_series(0, 7) g
ON CONFLICT (id) DO NOTHING;
INSERT INTO gpu_telemetry (node, gpu_index, gpu_uuid, gpu_name, utilization_percent, memory_used_mb, memory_total_mb, temperature_c, sampled_at)
SELECT 'bench-node' || lpad(n::text, 2, '0'), g, 'GPU-' || n || '-' || g, 'NVIDIA H100 80GB HBM3', 85 + (g % 10), 30000, 81559, 60, now()
FROM generate_series(0, 24) n CROSS JOIN generate_series(0, 7) g
ON CONFLICT (node, gpu_index) DO NOTHING;
ANALYZE;

-- name: BenchStateCount
-- What the seed wrote, and the shards the bench's pages show (@c: the corpus).
SELECT (SELECT count(*) FROM shards WHERE corpus_id = @c) AS shards,
       (SELECT count(*) FROM shards WHERE corpus_id = @c AND state = 'succeeded') AS succeeded,
       (SELECT count(*) FROM shards WHERE corpus_id = @c AND state = 'running') AS running,
       (SELECT count(*) FROM shards WHERE corpus_id = @c AND state = 'dead') AS dead,
       (SELECT count(*) FROM segments WHERE corpus_id = @c) AS segments,
       (SELECT count(*) FROM file_failures WHERE corpus_id = @c) AS file_failures,
       (SELECT coalesce(min(id), 0) FROM shards WHERE corpus_id = @c AND state = 'succeeded') AS sample_shard,
       (SELECT coalesce(min(id), 0) FROM shards WHERE corpus_id = @c AND state = 'dead') AS sample_dead,
       (SELECT coalesce(percentile_disc(0.5) WITHIN GROUP (ORDER BY id), 0) FROM shards WHERE corpus_id = @c) AS mid_shard;

-- name: CorpusIdByName
SELECT id FROM corpora WHERE name = @name;

-- name: ShardsCount
SELECT count(*) AS shards FROM shards WHERE corpus_id = @c;

-- name: BenchWorkersDelete
-- The bench's simulated workers and their GPUs (node names bench-node00..24).
DELETE FROM workers WHERE id LIKE 'bench-node%';
DELETE FROM gpu_telemetry WHERE node LIKE 'bench-node%';
