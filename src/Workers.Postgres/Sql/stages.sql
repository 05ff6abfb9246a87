-- Pipelines of stages (issue 15, migration 009): model-stage results and who can serve what.

-- name: ShardStageResultsSet
-- In COMPLETE, after the fenced UPDATE took the row lock: how many stage results the shard wrote.
UPDATE shards SET stage_results = @results WHERE id = @id;

-- name: DashboardCorpusStageResults
-- Stage results per corpus (the per-shard counter; one pass over shards that have any).
SELECT corpus_id, sum(stage_results)::bigint AS stage_results FROM shards WHERE stage_results > 0 GROUP BY corpus_id;

-- name: DashboardUnservableShards
-- Queued shards of pipelines that no running worker serves (workers.pipelines), per pipeline:
-- they wait until a worker that loads the pipeline starts. Only said while some worker runs (a
-- stopped fleet serves nothing, which the fleet page already shows). A worker from before 009
-- (pipelines NULL) claims anything, so then nothing is unservable.
WITH live AS (
    SELECT pipelines FROM workers WHERE state = 'running' AND heartbeat_at > @fresh_after
), served AS (
    SELECT DISTINCT unnest(pipelines) AS pipeline FROM live
)
SELECT c.pipeline, count(*)::int AS shards, COALESCE(sum(s.audio_seconds), 0) AS audio_seconds
FROM shards s JOIN corpora c ON c.id = s.corpus_id
WHERE s.state = 'queued'
  AND EXISTS (SELECT 1 FROM live)
  AND NOT EXISTS (SELECT 1 FROM live WHERE pipelines IS NULL)
  AND c.pipeline NOT IN (SELECT pipeline FROM served)
GROUP BY c.pipeline
ORDER BY c.pipeline;

-- name: DashboardShardStageResults
-- The first @max stage results of one shard (primary key order: file, start, stage), for the shard page.
SELECT r.file_index, f.path, r.start_seconds, r.stage, r.result::text AS result
FROM segment_results r
JOIN files f ON f.corpus_id = r.corpus_id AND f.file_index = r.file_index
WHERE r.shard_id = @id
ORDER BY r.file_index, r.start_seconds, r.stage
LIMIT @max;
