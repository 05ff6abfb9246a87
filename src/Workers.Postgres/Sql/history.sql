-- Throughput history and lifetime counters (migration 007).
-- Time (issue 11): every comparison uses the database's clock, coalesce(@now::timestamptz, now()).
-- Production never passes @now (NULL), so the whole fleet agrees on one clock whatever a node's
-- own clock says; tests pin @now through the very same statements (DbClock).

-- name: HistoryMinutes
-- One row per minute for the last @minutes minutes up to and including the current (partial)
-- one on the database's clock, ascending, each the sum of the minute's slot rows; minutes with
-- nothing finished are zero-filled. One primary-key range scan (at most 1440 x 64 rows).
WITH span AS (
    SELECT m - (@minutes - 1) * interval '1 minute' AS first_minute, m AS last_minute
    FROM date_bin('1 minute', coalesce(@now::timestamptz, now()), timestamptz '2000-01-01 00:00:00+00') AS m
)
SELECT g.minute, COALESCE(t.audio_seconds, 0) AS audio_seconds, COALESCE(t.shards_succeeded, 0)::bigint AS shards_succeeded,
       COALESCE(t.attempts_failed, 0)::bigint AS attempts_failed
FROM span, generate_series(span.first_minute, span.last_minute, interval '1 minute') AS g(minute)
LEFT JOIN (
    SELECT minute, sum(audio_seconds) AS audio_seconds, sum(shards_succeeded) AS shards_succeeded, sum(attempts_failed) AS attempts_failed
    FROM throughput_minutes, span
    WHERE minute BETWEEN span.first_minute AND span.last_minute
    GROUP BY minute
) t ON t.minute = g.minute
ORDER BY g.minute;

-- name: ThroughputTotals
-- Lifetime totals: the minutes kept plus what the retention prune folded into the archive row.
-- Reads at most Retention:ThroughputDays of minutes (43,200 minutes at the default 30 days, up to 8 rows each).
SELECT COALESCE((SELECT sum(audio_seconds) FROM throughput_minutes), 0) + COALESCE((SELECT audio_seconds FROM throughput_archive), 0) AS audio_seconds,
       (COALESCE((SELECT sum(shards_succeeded) FROM throughput_minutes), 0) + COALESCE((SELECT shards_succeeded FROM throughput_archive), 0))::bigint AS shards_succeeded,
       (COALESCE((SELECT sum(attempts_failed) FROM throughput_minutes), 0) + COALESCE((SELECT attempts_failed FROM throughput_archive), 0))::bigint AS attempts_failed;
