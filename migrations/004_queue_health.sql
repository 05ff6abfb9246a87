-- 004: queue health. Storage and autovacuum settings for the tables updated all day long, an
-- index change that lets heartbeats be HOT updates, and the bookkeeping row of the retention
-- prune (QueueMaintenance, options section Retention).
--
-- Why this matters: a running shard is heartbeated every Queue:HeartbeatSeconds (10 s), and so is
-- its worker's registry row. 200 workers make 40 row versions a second, ~3.5 M a day, against a
-- few thousand claims and completions. Every UPDATE leaves a dead tuple behind. Two things keep
-- that from bloating the tables and their indexes:
--   * HOT updates (heap-only tuples): when no indexed column changes (including columns named in
--     a partial index's WHERE) and the new version fits on the same page, PostgreSQL writes no
--     index entries at all and can prune the old version on the page without a VACUUM. That needs
--     free space on each page: fillfactor reserves it.
--   * autovacuum running early and often: the defaults (vacuum at 20% dead rows, analyze at 10%)
--     suit tables that change slowly; on a 1 M-shard table they wait for 200,000 dead rows.
--
-- Note: ALTER TABLE ... SET (fillfactor = ...) only governs pages written from now on; existing
-- pages stay as full as they are until the table is rewritten (VACUUM FULL, or pg_repack online).
-- A new deployment gets the setting on every page, since these tables are empty when 004 runs.

-- shards -----------------------------------------------------------------------------------------
-- The heartbeat sets lease_expires_at, heartbeat_at and processed_seconds. Until now
-- lease_expires_at was the key of shards_running_lease, so NO heartbeat could be HOT: each one
-- inserted a new entry into all four indexes of shards (pkey, corpus+ordinal, corpus+state,
-- running lease), i.e. index bloat on exactly the pkey the claim and complete use.
--
-- The rescuer does not need lease_expires_at in the index: it only ever looks at running shards,
-- and there are never more of those than worker slots in the fleet (hundreds, a few thousand).
-- An index on the running rows keyed by id finds them just as fast, the lease filter and the
-- ORDER BY lease_expires_at LIMIT then run over that small set, and nothing the heartbeat
-- changes is indexed any more (state, in the predicate, is not touched by a heartbeat), so
-- heartbeats become HOT. The claim and completion still change state and are not HOT: two per
-- shard run against ~180 heartbeats for a 30-minute shard.
-- Built inside the migration's transaction (not CONCURRENTLY): it blocks writes to shards for one
-- scan of the table, about a second per million shards; migrations run at start-up.
CREATE INDEX shards_running ON shards (id) WHERE state = 'running';
DROP INDEX shards_running_lease;

ALTER TABLE shards SET (
    -- 15% of each page left free so a heartbeat's new row version lands on the same page (HOT).
    fillfactor = 85,
    -- Vacuum at 1% dead rows (+1000) instead of 20%: dead versions of claimed/completed shards
    -- are removed while there are thousands, not hundreds of thousands, and the claim's partial
    -- index (shards_claimable) does not fill up with entries pointing at dead rows.
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    -- Re-analyze at 2%: the state mix shifts from all-queued to all-succeeded as a corpus runs,
    -- and the planner's choice of the partial indexes depends on those estimates.
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_analyze_threshold = 1000,
    -- Let a vacuum of this table do five times the default work per cost round (the default
    -- vacuum_cost_limit is 200), so it finishes in seconds rather than trickling along while the
    -- dead rows it is meant to remove keep arriving.
    autovacuum_vacuum_cost_limit = 1000
);

-- workers ----------------------------------------------------------------------------------------
-- The registry heartbeat sets heartbeat_at, current_shard and current_attempt every 10 s per
-- worker. workers_running indexed heartbeat_at, so those heartbeats were never HOT either. The
-- table holds one row per worker process ever started (until pruned); every reader (status,
-- dashboard, stale-worker checks) reads it whole, so the index saved nothing. It is replaced by an
-- index the retention prune uses (stopped rows by age), whose columns the heartbeat never touches.
CREATE INDEX workers_stopped ON workers (stopped_at) WHERE state = 'stopped';
DROP INDEX workers_running;

ALTER TABLE workers SET (
    -- Small table, updated constantly: leave 30% free so each heartbeat stays on its page.
    fillfactor = 70,
    -- With a few hundred rows the scale factor hardly matters; the threshold decides. Vacuum after
    -- ~100 dead rows plus 2%, i.e. every few heartbeat rounds, keeping the table a handful of pages.
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 100,
    autovacuum_analyze_scale_factor = 0.05
);

-- shard_attempts ---------------------------------------------------------------------------------
-- One insert per claim and one update when the attempt ends (outcome, finished_at, error: none of
-- them indexed, so that update is HOT when it fits). Mostly append-only, and pruned in batches by
-- the retention job: moderate settings.
ALTER TABLE shard_attempts SET (
    -- The finishing update rewrites a row that may carry a long error stack and log tail: 10% free.
    fillfactor = 90,
    autovacuum_vacuum_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05,
    -- Vacuum after inserts too (default 20%), so the visibility map stays current for the
    -- dashboard's attempt-history reads and old pages get frozen in small steps.
    autovacuum_vacuum_insert_scale_factor = 0.05
);

-- Retention prune bookkeeping: when each maintenance task last ran, fleet-wide. Read and written
-- under the task's advisory lock, so with N nodes the prune still runs once per interval, not N
-- times.
CREATE TABLE maintenance_runs (
    task         text PRIMARY KEY,
    last_run_at  timestamptz NOT NULL,
    detail       text
);
