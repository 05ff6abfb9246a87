-- Worker registry and GPU telemetry statements.
-- Time (issue 11): every comparison uses the database's clock, coalesce(@now::timestamptz, now()).
-- Production never passes @now (NULL), so the whole fleet agrees on one clock whatever a node's
-- own clock says; tests pin @now through the very same statements (DbClock).

-- name: WorkerRegister
-- Also measures the worker's clock against the database's (008): @client_now is the worker's clock
-- when it sent this statement; the offset is returned for the start-up skew check.
INSERT INTO workers (id, node, pid, slot, gpu_index, gpu_uuid, gpu_name, execution_provider, threads, version, queues,
                     started_at, heartbeat_at, clock_offset_ms, clock_checked_at, pipelines)
VALUES (@id, @node, @pid, @slot, @gpu_index, @gpu_uuid, @gpu_name, @provider, @threads, @version, @queues,
        coalesce(@now::timestamptz, now()), coalesce(@now::timestamptz, now()),
        extract(epoch FROM @client_now::timestamptz - clock_timestamp()) * 1000, clock_timestamp(), @pipelines)
ON CONFLICT (id) DO UPDATE SET state = 'running', heartbeat_at = EXCLUDED.heartbeat_at, stopped_at = NULL,
    clock_offset_ms = EXCLUDED.clock_offset_ms, clock_checked_at = EXCLUDED.clock_checked_at,
    pipelines = EXCLUDED.pipelines
RETURNING clock_offset_ms;

-- name: DatabaseClock
-- The database's clock (DbClock.ReadAsync): the worker's start-up skew check, and the pipeline bench's launch stamp.
SELECT clock_timestamp();

-- name: WorkerHeartbeat
-- Also carries the claim latency (007): this process's totals, set (not added), so a lost
-- heartbeat loses nothing; the interval's max only when the interval had claims (NULL otherwise).
-- And the clock offset (008), measured as in WorkerRegister and returned for the skew check.
UPDATE workers
SET heartbeat_at = coalesce(@now::timestamptz, now()), current_shard = @shard, current_attempt = @attempt,
    claims = COALESCE(@claims, claims), claim_seconds = COALESCE(@claim_seconds, claim_seconds),
    claim_last_ms = COALESCE(@claim_last_ms, claim_last_ms), claim_max_ms = COALESCE(@claim_max_ms, claim_max_ms),
    clock_offset_ms = extract(epoch FROM @client_now::timestamptz - clock_timestamp()) * 1000, clock_checked_at = clock_timestamp()
WHERE id = @id
RETURNING clock_offset_ms;

-- name: WorkerShardDone
UPDATE workers
SET shards_completed = shards_completed + 1, audio_seconds_done = audio_seconds_done + @audio, last_rate = @rate,
    current_shard = NULL, current_attempt = NULL, heartbeat_at = coalesce(@now::timestamptz, now())
WHERE id = @id;

-- name: WorkerStop
UPDATE workers SET state = @state, stopped_at = coalesce(@now::timestamptz, now()), current_shard = NULL, current_attempt = NULL, detail = @detail WHERE id = @id;

-- name: WorkerList
SELECT id, node, pid, slot, gpu_index, gpu_uuid, gpu_name, execution_provider, threads, version, state,
       started_at, heartbeat_at, stopped_at, current_shard, shards_completed, audio_seconds_done, last_rate, detail,
       claims, claim_seconds, claim_last_ms, claim_max_ms,
       coalesce(@now::timestamptz, now()) - heartbeat_at AS heartbeat_age, clock_offset_ms, clock_checked_at
FROM workers
WHERE state = 'running' OR stopped_at > coalesce(@now::timestamptz, now()) - @window
ORDER BY node, slot, started_at;

-- name: GpuTelemetryUpsert
INSERT INTO gpu_telemetry (node, gpu_index, gpu_uuid, gpu_name, utilization_percent, memory_used_mb, memory_total_mb, temperature_c, sampled_at)
VALUES (@node, @gpu_index, @gpu_uuid, @gpu_name, @util, @mem_used, @mem_total, @temp, coalesce(@now::timestamptz, now()))
ON CONFLICT (node, gpu_index) DO UPDATE SET gpu_uuid = EXCLUDED.gpu_uuid, gpu_name = EXCLUDED.gpu_name,
    utilization_percent = EXCLUDED.utilization_percent, memory_used_mb = EXCLUDED.memory_used_mb,
    memory_total_mb = EXCLUDED.memory_total_mb, temperature_c = EXCLUDED.temperature_c, sampled_at = EXCLUDED.sampled_at;

-- name: GpuTelemetryList
SELECT node, gpu_index, gpu_uuid, gpu_name, utilization_percent, memory_used_mb, memory_total_mb, temperature_c, sampled_at
FROM gpu_telemetry ORDER BY node, gpu_index;

-- name: WorkerClaimLatency
-- Fleet-wide claim latency for /metrics: count and sum over every registry row (a summary's
-- _count/_sum), and the slowest claim of the latest claiming interval of the running workers.
SELECT COALESCE(sum(claims), 0)::bigint AS claims, COALESCE(sum(claim_seconds), 0) AS claim_seconds,
       max(claim_max_ms) FILTER (WHERE state = 'running') AS claim_max_ms, max(claim_last_ms) FILTER (WHERE state = 'running') AS claim_last_ms
FROM workers;
