-- The pipeline bench's split of a whole run into the workers' start-up and their time in shards, on the database's clock.

-- name: PipelineRunSpans
-- Per worker of the corpus's run, its first claim and its last finish; then the mean start-up (launch to first
-- claim) and the span from the first claim to the last finish. @launched: the database's clock just before launch
-- (DbClock.ReadAsync).
WITH w AS (
    SELECT a.worker, min(a.started_at) AS first_started, max(a.finished_at) AS last_finished
    FROM shard_attempts a
    JOIN shards s ON s.id = a.shard_id
    WHERE s.corpus_id = @corpus
    GROUP BY a.worker
)
SELECT coalesce(extract(epoch FROM avg(first_started - @launched::timestamptz)), 0)::float8 AS startup_seconds,
       coalesce(extract(epoch FROM max(last_finished) - min(first_started)), 0)::float8 AS shard_seconds
FROM w;
