-- Throughput history and lifetime counters (migration 007). Time is passed in.

-- name: HistoryMinutes
-- One row per minute from @from to @to inclusive, ascending; minutes with nothing finished are
-- zero-filled. At most 1440 primary-key probes.
SELECT g.minute, COALESCE(t.audio_seconds, 0), COALESCE(t.shards_succeeded, 0), COALESCE(t.attempts_failed, 0)
FROM generate_series(@from::timestamptz, @to::timestamptz, interval '1 minute') AS g(minute)
LEFT JOIN throughput_minutes t ON t.minute = g.minute
ORDER BY g.minute;

-- name: ThroughputTotals
-- Lifetime totals: the minutes kept plus what the retention prune folded into the archive row.
-- Reads at most Retention:ThroughputDays of minutes (43,200 rows at the default 30 days).
SELECT COALESCE((SELECT sum(audio_seconds) FROM throughput_minutes), 0) + COALESCE((SELECT audio_seconds FROM throughput_archive), 0),
       (COALESCE((SELECT sum(shards_succeeded) FROM throughput_minutes), 0) + COALESCE((SELECT shards_succeeded FROM throughput_archive), 0))::bigint,
       (COALESCE((SELECT sum(attempts_failed) FROM throughput_minutes), 0) + COALESCE((SELECT attempts_failed FROM throughput_archive), 0))::bigint;
