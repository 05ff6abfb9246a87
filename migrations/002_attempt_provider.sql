-- 002: record which execution provider ran each attempt. A GPU node that silently ran on CPU is
-- the most common invisible failure in these pipelines; with this column it is one query away.
ALTER TABLE shard_attempts ADD COLUMN execution_provider text;
