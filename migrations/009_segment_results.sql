-- 009: pipelines of stages (issue 15).
--
-- Results of model stages, one row per speech segment and stage, written with COPY in the shard's
-- fenced COMPLETE beside the segments they belong to. A segment is (shard_id, file_index,
-- start_seconds): the values are the very doubles written into segments, so the export joins on
-- equality. result is the stage's kept outputs as JSON: {"<output>": [numbers]} for a vector,
-- {"<output>": {"labels": [...], "scores": [...]}} for top-k. Deleted with the shard's segments
-- on a re-run (SegmentsDeleteForShards) and by cascade with the shard.
CREATE TABLE segment_results (
    corpus_id      bigint NOT NULL,
    shard_id       bigint NOT NULL REFERENCES shards (id) ON DELETE CASCADE,
    file_index     integer NOT NULL,
    start_seconds  double precision NOT NULL,
    stage          text NOT NULL,
    result         jsonb NOT NULL,
    PRIMARY KEY (shard_id, file_index, start_seconds, stage)
);

-- The pipelines a worker process has loaded and serves (NULL: a worker from before 009, which
-- claimed any shard). The claim filters on them; the dashboard counts queued shards whose
-- pipeline no running worker serves.
ALTER TABLE workers ADD COLUMN pipelines text[];

-- Results written per shard, set in COMPLETE and reset with the segments on a re-run, so the
-- Corpora page counts them from the shards pass it makes anyway, never from segment_results.
ALTER TABLE shards ADD COLUMN stage_results integer NOT NULL DEFAULT 0;
