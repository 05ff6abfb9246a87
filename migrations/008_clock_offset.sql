-- 008: the worker's clock against the database's (issue 11).
-- Every lease, claim, retry, rescue and retention comparison runs on the database's clock, so a
-- node's wrong clock cannot hurt the queue; it is still worth seeing (logs, AttemptLog times,
-- ffmpeg/ONNX timings and GPU samples are stamped by the node). Each worker measures its clock's
-- offset from the database's at registration and on every registry heartbeat, in the statement
-- itself: offset = the worker's clock when it sent the statement - clock_timestamp(), so it is
-- exact to within the one-way latency of the statement (milliseconds), far below the warning threshold
-- (Queue:ClockSkewWarnSeconds). Positive: the worker's clock is ahead.
ALTER TABLE workers
    ADD COLUMN clock_offset_ms double precision,
    ADD COLUMN clock_checked_at timestamptz;
