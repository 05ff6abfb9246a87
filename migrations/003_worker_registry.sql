-- 003: the worker registry and node GPU telemetry, for `workers status`, the dashboard and the
-- runbook's "is this GPU node silently on CPU?" question.

-- One row per worker process (a restarted slot is a new row: its pid changed). A row whose
-- heartbeat_at is older than a few heartbeats belongs to a process that died without saying so.
CREATE TABLE workers (
    id                  text PRIMARY KEY,          -- node/pid/slot, as written into leases
    node                text NOT NULL,
    pid                 integer NOT NULL,
    slot                integer NOT NULL,
    gpu_index           text,
    gpu_uuid            text,
    gpu_name            text,
    execution_provider  text NOT NULL,
    threads             integer NOT NULL,
    version             text NOT NULL,
    queues              text[] NOT NULL,
    state               text NOT NULL DEFAULT 'running',
    started_at          timestamptz NOT NULL,
    heartbeat_at        timestamptz NOT NULL,
    stopped_at          timestamptz,
    current_shard       bigint,
    current_attempt     integer,
    shards_completed    integer NOT NULL DEFAULT 0,
    audio_seconds_done  double precision NOT NULL DEFAULT 0,
    last_rate           double precision,          -- x-realtime of the last shard
    detail              text,                      -- why it stopped, for crash-looping slots
    CONSTRAINT workers_state_valid CHECK (state IN ('running', 'stopped', 'crash_looping'))
);
CREATE INDEX workers_node ON workers (node, slot);
CREATE INDEX workers_running ON workers (heartbeat_at) WHERE state = 'running';

-- Latest sample per GPU of each node (the supervisor upserts; history is not kept here).
CREATE TABLE gpu_telemetry (
    node                text NOT NULL,
    gpu_index           integer NOT NULL,
    gpu_uuid            text NOT NULL,
    gpu_name            text NOT NULL,
    utilization_percent double precision,
    memory_used_mb      double precision,
    memory_total_mb     double precision,
    temperature_c       double precision,
    sampled_at          timestamptz NOT NULL,
    PRIMARY KEY (node, gpu_index)
);
