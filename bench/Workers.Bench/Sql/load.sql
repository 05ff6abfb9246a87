-- `workers-bench load`: many in-process workers against the real queue.

-- name: MaxConnectionsShow
-- The server's connection limit, checked before anything is written.
SELECT current_setting('max_connections')::int AS max_connections;

-- name: LoadRunCheck
-- Exactly once: per shard of the bench corpus (@c), how many attempts succeeded.
WITH per_shard AS (
  SELECT s.id, s.state,
         (SELECT count(*) FROM shard_attempts a WHERE a.shard_id = s.id AND a.outcome = 'succeeded') AS succeeded
  FROM shards s WHERE s.corpus_id = @c)
SELECT
  (SELECT count(*) FROM per_shard WHERE succeeded = 1 AND state = 'succeeded') AS succeeded_once,
  (SELECT count(*) FROM per_shard WHERE succeeded > 1) AS doubles,
  (SELECT count(*) FROM per_shard WHERE state <> 'succeeded') AS not_succeeded,
  (SELECT count(*) FROM segments WHERE corpus_id = @c) AS segments;

-- name: ConnectionsCount
-- Connections open to this database (the sampler's own included).
SELECT count(*) AS connections FROM pg_stat_activity WHERE datname = current_database();
