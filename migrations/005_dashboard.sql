-- 005: what the dashboard needs: paused queues, an audit trail of operator actions, and an index
-- for the fleet's recent rate (ETA, throughput).

-- A queue listed here is skipped by ShardClaim (NOT EXISTS on this table's primary key: one index
-- probe per candidate row, on a table of a handful of rows). Running shards of a paused queue
-- finish normally; nothing new is claimed until the row is deleted (resume).
CREATE TABLE paused_queues (
    queue      text PRIMARY KEY,
    paused_by  text NOT NULL,
    paused_at  timestamptz NOT NULL,
    CONSTRAINT paused_queues_queue_not_blank CHECK (length(btrim(queue)) > 0)
);

-- One row per operator action, whatever its outcome: who (the authenticated user, or 'local'),
-- from where, what, on what, and how many rows it changed. Append-only; read newest first.
CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL,
    actor          text NOT NULL,
    remote_address text,
    action         text NOT NULL,
    target         text NOT NULL,
    rows_affected  integer NOT NULL,
    detail         text,
    CONSTRAINT audit_log_rows_nonnegative CHECK (rows_affected >= 0)
);
CREATE INDEX audit_log_at ON audit_log (at);

-- The fleet's recent rate (audio seconds finished per wall-clock second over the last minutes)
-- drives the dashboard's ETA and the throughput metric. Without this index that sum reads every
-- shard; with it, only the shards finished inside the window. The columns are set by the
-- completing UPDATE, which changes state anyway (never HOT), so heartbeats stay HOT.
CREATE INDEX shards_succeeded_finished ON shards (finished_at) WHERE state = 'succeeded';
