-- Export statements: a corpus's speech segments, streamed through a server-side cursor.

-- name: ExportTransactionSettings
-- The export's transaction sits idle between batches while the client writes them, for minutes
-- when it also writes segment audio; a server-wide idle_in_transaction_session_timeout must not
-- end it half-way. Local: it ends with the transaction.
SET LOCAL idle_in_transaction_session_timeout = 0;

-- name: SegmentsExportDeclare
-- Every segment of the corpus's succeeded shards in file order, then start. file_index order is
-- path order: the shard planner sorts files by ordinal path before numbering them (files that
-- failed at enqueue come after, and have no segments). Ordering by file_index, not by path,
-- keeps the order independent of the database's collation and lets segments_export
-- (corpus_id, file_index, start_seconds) deliver it; end and shard only break ties, so the
-- output is the same on every run. A cursor is planned for fast start and read in batches, so
-- neither the server nor the client ever holds the whole result. at_cut says the segment starts
-- exactly where a shard item of a split file starts: the export joins it to the segment ending
-- there (speech running across a shard boundary is one segment, as in an unsplit run).
-- results: the model stages' results of the segment as one JSON object {stage: result} (009;
-- NULL for a pipeline without stages), through segment_results' primary key.
DECLARE segments_export_cursor NO SCROLL CURSOR FOR
SELECT s.file_index, f.path, f.duration_seconds, s.start_seconds, s.end_seconds, s.shard_id,
       EXISTS (SELECT 1 FROM shard_items i
               WHERE i.corpus_id = s.corpus_id AND i.file_index = s.file_index AND i.start_seconds > 0
                 AND i.start_seconds BETWEEN s.start_seconds - 1e-6 AND s.start_seconds + 1e-6) AS at_cut,
       (SELECT jsonb_object_agg(r.stage, r.result ORDER BY r.stage)::text FROM segment_results r
        WHERE r.shard_id = s.shard_id AND r.file_index = s.file_index AND r.start_seconds = s.start_seconds) AS results
FROM segments s
JOIN shards sh ON sh.id = s.shard_id
JOIN files f ON f.corpus_id = s.corpus_id AND f.file_index = s.file_index
WHERE s.corpus_id = @corpus_id AND sh.state = 'succeeded'
ORDER BY s.file_index, s.start_seconds, s.end_seconds, s.shard_id;

-- name: SegmentsExportFetch
FETCH FORWARD 5000 FROM segments_export_cursor;

