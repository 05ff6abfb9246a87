-- 007: throughput history and lifetime counters (dashboard chart, GET /api/history, /metrics),
-- and the claim latency each worker reports through its registry heartbeat.

-- Per wall-clock minute (UTC, truncated): audio seconds of shards that succeeded, shards that
-- succeeded, attempts that failed (reported failures and expired leases). Written by an upsert
-- inside the fenced COMPLETE and FAIL transactions, so a minute counts a shard exactly when its
-- result committed, never twice. Readers sum a minute's rows.
--
-- Why the upsert is the LAST statement of those transactions: every completion in a minute
-- updates the same row, and a row lock is held until commit. Taken first, it would make every
-- worker completing in that minute wait for the others' segment COPY and attempt update, i.e.
-- serialize the fleet's completions. Taken last, it is held only for the commit itself (a WAL
-- flush), and the fenced shard UPDATE, which must come first, still decides whether anything is
-- written at all.
--
-- Why a minute has up to 64 rows (slot = shard id mod 64): even held only for the commit, one row
-- per minute chains the commits: the next completer waits for the previous one's WAL flush
-- before it can even start its own, so completions cannot share a group commit. Measured with
-- `workers bench load --workers 16 --work-ms 0` (a completion storm, ~300 completions/s): one row
-- per minute added ~30-60 ms to the completion p90; 8 rows removed that, but with 200 workers
-- (`workers bench load`, ~160 completions/s on 2 cores) 8 chains still queued: completion p90
-- 2.3 s against 1.3 s without the upsert. 64 chains run side by side. Rows exist only for slots
-- that saw an event, so a real fleet (a completion every few seconds) writes a few rows a minute.
-- Only non-indexed columns change, so the updates are HOT; fillfactor leaves room for them.
CREATE TABLE throughput_minutes (
    minute            timestamptz NOT NULL,
    slot              smallint NOT NULL DEFAULT 0,
    audio_seconds     double precision NOT NULL DEFAULT 0,
    shards_succeeded  bigint NOT NULL DEFAULT 0,
    attempts_failed   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, slot),
    CONSTRAINT throughput_minutes_slot_valid CHECK (slot BETWEEN 0 AND 63)
) WITH (fillfactor = 70);

-- Lifetime counters without a second fleet-wide hot row: the totals are the sum of the minutes
-- still kept plus this single row, into which the retention prune (Retention:ThroughputDays)
-- folds the minutes it deletes, in the same statement. So the totals never drop when minutes are
-- pruned, and a completion touches nothing but its minute row.
CREATE TABLE throughput_archive (
    id                boolean PRIMARY KEY DEFAULT true,
    audio_seconds     double precision NOT NULL DEFAULT 0,
    shards_succeeded  bigint NOT NULL DEFAULT 0,
    attempts_failed   bigint NOT NULL DEFAULT 0,
    rows_folded       bigint NOT NULL DEFAULT 0,
    CONSTRAINT throughput_archive_one_row CHECK (id)
);

-- Claim latency, reported by each worker with its registry heartbeat (no extra write per claim):
-- claims made and their summed duration by this process (cumulative, set, not added, so a lost
-- heartbeat loses nothing), the latest claim's duration, and the slowest claim of the last
-- heartbeat interval that had any claim. None is indexed: the heartbeat stays a HOT update.
ALTER TABLE workers
    ADD COLUMN claims         bigint NOT NULL DEFAULT 0,
    ADD COLUMN claim_seconds  double precision NOT NULL DEFAULT 0,
    ADD COLUMN claim_last_ms  double precision,
    ADD COLUMN claim_max_ms   double precision;
