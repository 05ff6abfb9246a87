using System.Diagnostics;
using Workers.Audio.Synthesis;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>
/// An ffmpeg that hangs (a stuck network read, a decoder spinning on a damaged stream) is bounded
/// by Audio:ReadTimeout: the worker kills it, records the file as failed with the reason, and the
/// shard goes on; the other files' segments equal a clean run's and no ffmpeg is left behind (issue 6).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class HangingFfmpegTests(PostgresFixture pg) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-hanging-ffmpeg-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task A_hanging_ffmpeg_is_killed_after_the_read_timeout_and_only_its_file_fails()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var corpus = Path.Combine(_dir, "corpus");
        var gen = new SpeechCorpusGenerator(Path.Combine(_dir, "espeak"));
        gen.WriteWav(Path.Combine(corpus, "native.wav"), 40, new Random(21)); // 16 kHz WAV: read directly, no ffmpeg
        var flacSource = Path.Combine(_dir, "src.wav");
        gen.WriteWav(flacSource, 20, new Random(22));
        SpeechCorpusGenerator.Encode(flacSource, Path.Combine(corpus, "coded.flac"), 44100); // decoded by ffmpeg

        // Stands in for ffmpeg: starts, prints nothing, never ends.
        var hang = Path.Combine(_dir, "ffmpeg-that-hangs");
        File.WriteAllText(hang, $"#!/bin/sh\nexec sleep 600 # {_dir}\n");
        File.SetUnixFileMode(hang, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var env = WorkersProcess.Env(db.ConnectionString, Path.Combine(_dir, "tmp"));
        var run = WorkersProcess.RunOneCpuWorkerUntilIdle;
        Assert.Equal(0, (await WorkersProcess.RunAsync(env, "enqueue", corpus, "--name", "clean")).ExitCode);
        var clean = await WorkersProcess.RunAsync(env, TimeSpan.FromSeconds(90), run);
        Assert.True(clean.ExitCode == 0, clean.ToString());

        Assert.Equal(0, (await WorkersProcess.RunAsync(env, "enqueue", corpus, "--name", "hung")).ExitCode);
        var faulty = new Dictionary<string, string?>(env) { ["Audio__FfmpegPath"] = hang, ["Audio__ReadTimeout"] = "00:00:02" };
        var clock = Stopwatch.StartNew();
        var hung = await WorkersProcess.RunAsync(faulty, TimeSpan.FromSeconds(120), run);
        Assert.True(hung.ExitCode == 0, hung.ToString());

        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state <> 'succeeded'"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts a JOIN shards s ON s.id = a.shard_id JOIN corpora c ON c.id = s.corpus_id WHERE c.name = 'hung'"));
        var error = await db.ScalarAsync<string>(
            "SELECT ff.error FROM file_failures ff JOIN files f USING (corpus_id, file_index) JOIN corpora c ON c.id = f.corpus_id WHERE c.name = 'hung' AND f.path = 'coded.flac'");
        Assert.Contains("produced no audio for 2 s and was killed", error);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM file_failures"));

        // Every second is accounted for: the WAV's segments are the clean run's, the FLAC is a listed failure.
        var cleanSegments = await CorpusSegments.OfAsync(db, "clean");
        Assert.Contains(cleanSegments, s => s.File == "coded.flac");
        Assert.Equal(cleanSegments.Where(s => s.File == "native.wav"), await CorpusSegments.OfAsync(db, "hung"));

        // The stand-in was killed, not left sleeping.
        var left = Process.GetProcessesByName("sleep").Where(p =>
        {
            try { return File.ReadAllText($"/proc/{p.Id}/cmdline").Contains("600"); }
            catch (IOException) { return false; }
        }).ToList();
        Assert.Empty(left);
    }
}
