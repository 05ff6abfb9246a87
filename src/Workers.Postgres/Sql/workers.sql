-- Worker registry and GPU telemetry statements.

-- name: WorkerRegister
INSERT INTO workers (id, node, pid, slot, gpu_index, gpu_uuid, gpu_name, execution_provider, threads, version, queues,
                     started_at, heartbeat_at, pipelines)
VALUES (@id, @node, @pid, @slot, @gpu_index, @gpu_uuid, @gpu_name, @provider, @threads, @version, @queues, @now, @now, @pipelines)
ON CONFLICT (id) DO UPDATE SET state = 'running', heartbeat_at = @now, stopped_at = NULL, pipelines = EXCLUDED.pipelines;

-- name: WorkerHeartbeat
-- Also carries the claim latency (007): this process's totals, set (not added), so a lost
-- heartbeat loses nothing; the interval's max only when the interval had claims (NULL otherwise).
UPDATE workers
SET heartbeat_at = @now, current_shard = @shard, current_attempt = @attempt,
    claims = COALESCE(@claims, claims), claim_seconds = COALESCE(@claim_seconds, claim_seconds),
    claim_last_ms = COALESCE(@claim_last_ms, claim_last_ms), claim_max_ms = COALESCE(@claim_max_ms, claim_max_ms)
WHERE id = @id;

-- name: WorkerShardDone
UPDATE workers
SET shards_completed = shards_completed + 1, audio_seconds_done = audio_seconds_done + @audio, last_rate = @rate,
    current_shard = NULL, current_attempt = NULL, heartbeat_at = @now
WHERE id = @id;

-- name: WorkerStop
UPDATE workers SET state = @state, stopped_at = @now, current_shard = NULL, current_attempt = NULL, detail = @detail WHERE id = @id;

-- name: WorkerList
SELECT id, node, pid, slot, gpu_index, gpu_uuid, gpu_name, execution_provider, threads, version, state,
       started_at, heartbeat_at, stopped_at, current_shard, shards_completed, audio_seconds_done, last_rate, detail,
       claims, claim_seconds, claim_last_ms, claim_max_ms
FROM workers
WHERE state = 'running' OR stopped_at > @since
ORDER BY node, slot, started_at;

-- name: GpuTelemetryUpsert
INSERT INTO gpu_telemetry (node, gpu_index, gpu_uuid, gpu_name, utilization_percent, memory_used_mb, memory_total_mb, temperature_c, sampled_at)
VALUES (@node, @gpu_index, @gpu_uuid, @gpu_name, @util, @mem_used, @mem_total, @temp, @now)
ON CONFLICT (node, gpu_index) DO UPDATE SET gpu_uuid = EXCLUDED.gpu_uuid, gpu_name = EXCLUDED.gpu_name,
    utilization_percent = EXCLUDED.utilization_percent, memory_used_mb = EXCLUDED.memory_used_mb,
    memory_total_mb = EXCLUDED.memory_total_mb, temperature_c = EXCLUDED.temperature_c, sampled_at = EXCLUDED.sampled_at;

-- name: GpuTelemetryList
SELECT node, gpu_index, gpu_uuid, gpu_name, utilization_percent, memory_used_mb, memory_total_mb, temperature_c, sampled_at
FROM gpu_telemetry ORDER BY node, gpu_index;

-- name: WorkerClaimLatency
-- Fleet-wide claim latency for /metrics: count and sum over every registry row (a summary's
-- _count/_sum), and the slowest claim of the latest claiming interval of the running workers.
SELECT COALESCE(sum(claims), 0)::bigint, COALESCE(sum(claim_seconds), 0),
       max(claim_max_ms) FILTER (WHERE state = 'running'), max(claim_last_ms) FILTER (WHERE state = 'running')
FROM workers;
