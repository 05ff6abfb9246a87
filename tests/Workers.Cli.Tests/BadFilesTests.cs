using System.Text.Json;
using Workers.Audio;
using Workers.Audio.Synthesis;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>
/// Files that are unreadable, silent or very short, through the real `workers enqueue` and
/// `workers run` (issue 6). What is right for each:
/// <list type="bullet">
/// <item>A file the user running workers may not read is a per-file failure ("permission denied:
///   user '...'") at enqueue, and in the shard that holds it when it became unreadable later; the
///   shard succeeds with the other files' results.</item>
/// <item>A silence-only file is processed: 0 segments, not a failure (silence is a result).</item>
/// <item>A 10 ms file is shorter than one VAD window and than Pipelines:vad:MinSpeechMs, so it
///   cannot hold speech: it is processed like silence, 0 segments, not a failure. Only a file with
///   no samples at all is a failure, at enqueue ("no audio samples").</item>
/// </list>
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class BadFilesTests(PostgresFixture pg) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-bad-files-").FullName;

    public void Dispose()
    {
        // Not root, a mode-000 folder cannot be emptied: open it again first.
        foreach (var d in Directory.EnumerateDirectories(_dir, "closed-*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true }))
            File.SetUnixFileMode(d, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.Delete(_dir, true);
    }

    [Fact]
    public async Task An_unreadable_file_is_a_permission_failure_at_enqueue_and_in_the_shard_of_a_worker_and_the_shard_succeeds()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        Unprivileged.OpenPath(_dir);
        var corpus = Unprivileged.OpenFolder(_dir, "corpus");
        new SpeechCorpusGenerator(Path.Combine(_dir, "espeak")).WriteWav(Path.Combine(corpus, "speech.wav"), 30, new Random(1));
        TestAudio.WriteWav(Path.Combine(corpus, "closed-before.wav"), 10);
        TestAudio.WriteWav(Path.Combine(corpus, "closed-after.wav"), 10);
        var closedFolder = Path.Combine(corpus, "closed-folder");
        TestAudio.WriteWav(Path.Combine(closedFolder, "inside.wav"), 10);
        File.SetUnixFileMode(Path.Combine(corpus, "closed-before.wav"), UnixFileMode.None);
        File.SetUnixFileMode(closedFolder, UnixFileMode.None);
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Workers"] = db.ConnectionString,
            ["Models__Root"] = Unprivileged.ModelsRoot,
            ["Fleet__TempRoot"] = Unprivileged.OpenFolder(_dir, "tmp"),
            ["Queue__PollSeconds"] = "1",
        };

        var enqueue = await Unprivileged.RunAsync(env, TimeSpan.FromSeconds(60), "enqueue", corpus, "--name", "closed", "--json");
        Assert.True(enqueue.ExitCode == 0, enqueue.ToString());
        using (var doc = JsonDocument.Parse(enqueue.StdOut))
        {
            Assert.Equal(2, doc.RootElement.GetProperty("files").GetInt32()); // speech.wav, closed-after.wav
            var failed = doc.RootElement.GetProperty("failed_files").EnumerateArray()
                .ToDictionary(f => f.GetProperty("file").GetString()!, f => f.GetProperty("error").GetString()!);
            Assert.Equal(["closed-before.wav", "closed-folder"], failed.Keys.Order(StringComparer.Ordinal));
            Assert.StartsWith($"permission denied: user '{Unprivileged.User}' may not read this file", failed["closed-before.wav"]);
            Assert.StartsWith("folder cannot be read", failed["closed-folder"]);
        }

        // After enqueue, a file becomes unreadable: the worker records it and finishes the shard.
        File.SetUnixFileMode(Path.Combine(corpus, "closed-after.wav"), UnixFileMode.None);
        var run = await Unprivileged.RunAsync(env, TimeSpan.FromSeconds(90), "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle");
        Assert.True(run.ExitCode == 0, run.ToString());

        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state <> 'succeeded'"));
        Assert.Equal(await db.ScalarAsync<long>("SELECT count(*) FROM shards"), await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts"));
        Assert.Equal("closed-after.wav", await db.ScalarAsync<string>(
            "SELECT f.path FROM file_failures x JOIN files f USING (corpus_id, file_index)"));
        var error = await db.ScalarAsync<string>("SELECT error FROM file_failures");
        Assert.StartsWith($"permission denied: user '{Unprivileged.User}' may not read this file", error);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM file_failures"));
        // The readable file's speech was found and written.
        Assert.True(await db.ScalarAsync<long>("SELECT count(*) FROM segments") > 3);
        Assert.Equal(0L, await db.ScalarAsync<long>(
            "SELECT count(*) FROM segments s JOIN files f USING (corpus_id, file_index) WHERE f.path <> 'speech.wav'"));
    }

    [Fact]
    public async Task Silence_only_and_10_ms_files_are_processed_to_zero_segments_without_failure_or_hang()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var quiet = Path.Combine(_dir, "quiet");
        Directory.CreateDirectory(quiet);
        Pcm16Wav.Write(Path.Combine(quiet, "silence.wav"), 16000, 30 * 16000, _ => (short)0);
        TestAudio.Encode(Path.Combine(quiet, "silence.wav"), Path.Combine(quiet, "silence.flac")); // the ffmpeg path
        TestAudio.WriteWav(Path.Combine(quiet, "10ms.wav"), 0.01);
        TestAudio.Encode(Path.Combine(quiet, "10ms.wav"), Path.Combine(quiet, "10ms.flac"));
        Pcm16Wav.Write(Path.Combine(quiet, "no-samples.wav"), 16000, 0, _ => (short)0);
        // The same files beside speech: the run does find speech, only where there is some.
        var mixed = Path.Combine(_dir, "mixed");
        Directory.CreateDirectory(mixed);
        foreach (var f in Directory.GetFiles(quiet)) File.Copy(f, Path.Combine(mixed, Path.GetFileName(f)));
        new SpeechCorpusGenerator(Path.Combine(_dir, "espeak")).WriteWav(Path.Combine(mixed, "speech.wav"), 30, new Random(2));
        var env = WorkersProcess.Env(db.ConnectionString, Path.Combine(_dir, "tmp"));

        foreach (var (name, folder) in new[] { ("quiet", quiet), ("mixed", mixed) })
        {
            var r = await WorkersProcess.RunAsync(env, "enqueue", folder, "--name", name, "--json");
            Assert.True(r.ExitCode == 0, r.ToString());
            using var doc = JsonDocument.Parse(r.StdOut);
            Assert.Equal(name == "quiet" ? 4 : 5, doc.RootElement.GetProperty("files").GetInt32());
            var failed = Assert.Single(doc.RootElement.GetProperty("failed_files").EnumerateArray());
            Assert.Equal("no-samples.wav", failed.GetProperty("file").GetString());
            Assert.Equal("no audio samples", failed.GetProperty("error").GetString());
        }
        Assert.Equal(60.02, await db.ScalarAsync<double>(
            "SELECT sum(s.audio_seconds) FROM shards s JOIN corpora c ON c.id = s.corpus_id WHERE c.name = 'quiet'"), 2);

        // A limit, not a timing: a hang on a short file fails the test instead of blocking it.
        var run = await WorkersProcess.RunAsync(env, TimeSpan.FromSeconds(90), "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle");
        Assert.True(run.ExitCode == 0, run.ToString());

        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state <> 'succeeded' OR processed_seconds <> audio_seconds"));
        Assert.Equal(await db.ScalarAsync<long>("SELECT count(*) FROM shards"), await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE outcome = 'succeeded'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM file_failures"));
        Assert.Equal(0L, await db.ScalarAsync<long>(
            "SELECT count(*) FROM segments s JOIN files f USING (corpus_id, file_index) WHERE f.path <> 'speech.wav'"));
        Assert.True(await db.ScalarAsync<long>("SELECT count(*) FROM segments") > 3);

        var status = await WorkersProcess.RunAsync(env, "status", "quiet", "--json");
        Assert.True(status.ExitCode == 0, status.ToString());
        using var st = JsonDocument.Parse(status.StdOut);
        Assert.Equal(0, st.RootElement.GetProperty("segments").GetInt64());
        Assert.Equal(1, st.RootElement.GetProperty("shards").GetProperty("succeeded").GetInt32());
        Assert.Equal(st.RootElement.GetProperty("audio_seconds").GetDouble(), st.RootElement.GetProperty("processed_seconds").GetDouble(), 3);
    }
}
