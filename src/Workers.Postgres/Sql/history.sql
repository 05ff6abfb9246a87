-- Throughput history and lifetime counters (migration 007). Time is passed in.

-- name: HistoryMinutes
-- One row per minute from @from to @to inclusive, ascending, each the sum of the minute's slot
-- rows; minutes with nothing finished are zero-filled. One primary-key range scan (at most
-- 1440 x 8 rows).
SELECT g.minute, COALESCE(t.audio_seconds, 0), COALESCE(t.shards_succeeded, 0)::bigint, COALESCE(t.attempts_failed, 0)::bigint
FROM generate_series(@from::timestamptz, @to::timestamptz, interval '1 minute') AS g(minute)
LEFT JOIN (
    SELECT minute, sum(audio_seconds) AS audio_seconds, sum(shards_succeeded) AS shards_succeeded, sum(attempts_failed) AS attempts_failed
    FROM throughput_minutes
    WHERE minute BETWEEN @from::timestamptz AND @to::timestamptz
    GROUP BY minute
) t ON t.minute = g.minute
ORDER BY g.minute;

-- name: ThroughputTotals
-- Lifetime totals: the minutes kept plus what the retention prune folded into the archive row.
-- Reads at most Retention:ThroughputDays of minutes (43,200 minutes at the default 30 days, up to 8 rows each).
SELECT COALESCE((SELECT sum(audio_seconds) FROM throughput_minutes), 0) + COALESCE((SELECT audio_seconds FROM throughput_archive), 0),
       (COALESCE((SELECT sum(shards_succeeded) FROM throughput_minutes), 0) + COALESCE((SELECT shards_succeeded FROM throughput_archive), 0))::bigint,
       (COALESCE((SELECT sum(attempts_failed) FROM throughput_minutes), 0) + COALESCE((SELECT attempts_failed FROM throughput_archive), 0))::bigint;
