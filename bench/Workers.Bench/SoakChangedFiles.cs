using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Workers.Audio;
using Workers.Core.Corpora;
using Workers.Postgres.Corpora;
using Workers.Bench.Sql;
using Workers.Postgres.Sql;

namespace Workers.Bench;

/// <summary>
/// The soak's "file changed under the fleet" fault (issue 13): a copy of one corpus file is planned
/// as a corpus of its own, then changed before its shards run (truncated to a third, replaced by a
/// FIFO, or its folder swapped for a symlink to outside the corpus root), then enqueued. Such a
/// corpus cannot match the reference; instead every one must end with its shards succeeded and its
/// seconds accounted for: what the file no longer holds is listed as failed, no more and no less.
/// </summary>
internal sealed class SoakChangedFiles(TimeProvider time, NpgsqlDataSource db, string dir, string queue, Random rng)
{
    private static readonly string[] Changes = ["truncated", "replaced by a FIFO", "folder swapped for a symlink out of the root"];
    private readonly List<(long Id, string Name, string Change, double Seconds, double KeptSeconds)> _corpora = [];

    public IEnumerable<long> CorpusIds => _corpora.Select(c => c.Id);

    public async Task<string> InjectAsync(string sourceWav, CancellationToken ct)
    {
        var n = _corpora.Count + 1;
        var folder = Path.Combine(dir, $"changed-{n}");
        var sub = Path.Combine(folder, "sub");
        Directory.CreateDirectory(sub);
        var file = Path.Combine(sub, "talk.wav");
        File.Copy(sourceWav, file);
        var plan = await EnqueuePlanner.PlanAsync(FolderScanner.Scan(folder), new AudioDurationProbe(), 60, ct);
        var seconds = plan.AudioSeconds;

        // Changed after the plan (the enqueue's view of the file), before any worker can see it.
        var change = Changes[rng.Next(Changes.Length)];
        var kept = 0.0;
        switch (change)
        {
            case "truncated":
                var frames = (long)(seconds / 3 * 16000);
                using (var f = new FileStream(file, FileMode.Open)) f.SetLength(44 + frames * 2); // 16 kHz mono 16-bit, 44-byte header
                kept = frames / 16000.0;
                break;
            case "replaced by a FIFO":
                File.Delete(file);
                using (var mkfifo = Process.Start("mkfifo", [file])) mkfifo.WaitForExit();
                break;
            default:
                var outside = Path.Combine(dir, $"changed-{n}-outside");
                Directory.Move(sub, outside);
                Directory.CreateSymbolicLink(sub, outside);
                break;
        }
        var name = $"{queue}-changed-{n}";
        var id = await new CorpusWriter(db, time).WriteAsync(plan, new EnqueueRequest(name, Queue: queue, MaxAttempts: 1000), ct);
        _corpora.Add((id, name, change, seconds, kept));
        return $"{name}: {change} ({seconds:0.#} s enqueued)";
    }

    /// <summary>Report rows, and whether every changed corpus is accounted for.</summary>
    public async Task<(bool Pass, List<(string, string)> Rows, List<string> Problems)> VerifyAsync(CancellationToken ct)
    {
        var problems = new List<string>();
        var accounted = 0;
        foreach (var (id, name, change, seconds, kept) in _corpora)
        {
            await using var cmd = BenchSql.Command(db, "SoakChangedFileCheck");
            cmd.Parameters.AddWithValue("c", id);
            var (unfinished, failed) = await Check.SingleAsync(cmd, ct);
            var expected = seconds - kept;
            if (unfinished == 0 && Math.Abs(failed - expected) <= 0.5) accounted++;
            else problems.Add($"{name} ({change}): {unfinished} shard(s) not succeeded, {failed:0.###} s listed as failed, expected {expected:0.###} s");
        }
        var rows = new List<(string, string)> { ("files changed under the fleet", $"{_corpora.Count} ({accounted} accounted for: missing seconds listed as failed)") };
        return (accounted == _corpora.Count, rows, problems);
    }

    private static readonly RowMap<(long Unfinished, double FailedSeconds)> Check = new("SoakChangedFileCheck", c =>
    {
        var unfinished = c.Column<long>("unfinished");
        var failed = c.Column<double>("failed_seconds");
        return r => (r.Get(unfinished), r.Get(failed));
    });
}
