using System.Buffers.Binary;
using System.Text.Json;
using Workers.Audio;
using Workers.Core.Options;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>`workers export` end to end: the real executable against a real PostgreSQL, with real audio files (issue: export).</summary>
[Collection(PostgresCollection.Name)]
public sealed class ExportCommandTests(PostgresFixture pg) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-cli-export-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static Dictionary<string, string?> Env(TestSchema db) => new() { ["ConnectionStrings__Workers"] = db.ConnectionString };

    private sealed record Segment(string File, double Start, double End);

    /// <summary>
    /// Plays the worker: claims every shard and completes all but <paramref name="leaveQueued"/> of them with segments
    /// inside each item: [s+0.5, s+1.7654], [s+3, s+5.25], [s+4, s+4.5] (starts before the previous one ends), for items
    /// over 35 s [e-3, e-1] (a gap of more than 30 s), and [e-0.8, e] (to the item's end). Returns the completed segments.
    /// </summary>
    private static async Task<List<Segment>> ProcessAsync(TestSchema db, int leaveQueued = 0)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(await db.ScalarAsync<DateTime>("SELECT max(not_before) FROM shards")));
        var queue = new ShardQueue(db.DataSource, new QueueOptions(), time);
        var who = new WorkerIdentity("test-worker", "test-node");
        var claimed = await queue.ClaimAsync(who, ["default"], 1000);
        var done = new List<Segment>();
        foreach (var shard in claimed.Take(claimed.Count - leaveQueued))
        {
            var rows = new List<SegmentRow>();
            foreach (var item in await queue.GetItemsAsync(shard.Id))
            {
                double s = item.StartSeconds, e = item.EndSeconds;
                var ranges = new List<(double, double)> { (s + 0.5, s + 1.7654), (s + 3, s + 5.25), (s + 4, s + 4.5) };
                if (e - s > 35) ranges.Add((e - 3, e - 1));
                ranges.Add((e - 0.8, e));
                foreach (var (a, b) in ranges)
                {
                    rows.Add(new SegmentRow(item.FileIndex, a, b));
                    done.Add(new Segment(item.Path, a, b));
                }
            }
            Assert.True(await queue.CompleteAsync(shard, who, rows));
        }
        foreach (var shard in claimed.Skip(claimed.Count - leaveQueued)) Assert.True(await queue.ReleaseAsync(shard, who, "test"));
        return done;
    }

    private static List<JsonElement> Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    /// <summary>(sample rate, channels, bits, samples) from a WAV file's fmt and data chunks.</summary>
    private static (int Rate, int Channels, int Bits, short[] Samples) ReadWav(string path)
    {
        var b = File.ReadAllBytes(path);
        Assert.Equal("RIFF", System.Text.Encoding.ASCII.GetString(b, 0, 4));
        Assert.Equal(b.Length - 8, BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(4)));
        int rate = 0, channels = 0, bits = 0;
        for (var pos = 12; pos + 8 <= b.Length;)
        {
            var id = System.Text.Encoding.ASCII.GetString(b, pos, 4);
            var size = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(pos + 4));
            if (id == "fmt ")
            {
                channels = BinaryPrimitives.ReadInt16LittleEndian(b.AsSpan(pos + 10));
                rate = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(pos + 12));
                bits = BinaryPrimitives.ReadInt16LittleEndian(b.AsSpan(pos + 22));
            }
            else if (id == "data")
            {
                Assert.Equal(b.Length, pos + 8 + size);
                var samples = new short[size / 2];
                for (var i = 0; i < samples.Length; i++) samples[i] = BinaryPrimitives.ReadInt16LittleEndian(b.AsSpan(pos + 8 + i * 2));
                return (rate, channels, bits, samples);
            }
            pos += 8 + size;
        }
        throw new InvalidDataException($"{path}: no data chunk");
    }

    /// <summary>Sample <paramref name="i"/> of a <see cref="WriteNoiseWav"/> file: no two stretches alike, so a
    /// segment cut from the wrong place cannot pass for the right one (a pure tone would repeat every period).</summary>
    private static short NoiseSample(long i)
    {
        var x = (ulong)i * 0x9E3779B97F4A7C15UL;
        x ^= x >> 29;
        return (short)((long)(x % 20001) - 10000);
    }

    /// <summary>A 16 kHz mono 16-bit WAV of <see cref="NoiseSample"/>s: read directly (no ffmpeg), sample-exact.</summary>
    private static void WriteNoiseWav(string path, double seconds) => Workers.Audio.Pcm16Wav.Write(path, 16000, (int)(seconds * 16000), i => NoiseSample(i));

    [Fact]
    public async Task Export_to_a_file_with_audio_writes_one_wav_per_segment_as_long_as_the_segment_inside_the_audio_folder()
    {
        await using var db = await pg.CreateSchemaAsync(migrate: false);
        var corpus = Path.Combine(_dir, "corpus");
        WriteNoiseWav(Path.Combine(corpus, "a", "one.wav"), 12.5);
        TestAudio.WriteWav(Path.Combine(corpus, "a", "two at 8k.wav"), 30, rate: 8000); // decoded and resampled by ffmpeg
        WriteNoiseWav(Path.Combine(corpus, "b", "c", "three.wav"), 100);          // split in two items of 50 s
        WriteNoiseWav(Path.Combine(corpus, "five.wav"), 10);
        TestAudio.Encode(Path.Combine(corpus, "five.wav"), Path.Combine(corpus, "five.flac")); // same folder name as five.wav
        var enq = await WorkersProcess.RunAsync(Env(db), "enqueue", corpus, "--name", "speech", "--shard-minutes", "1");
        Assert.True(enq.ExitCode == 0, enq.ToString());
        var expected = await ProcessAsync(db);

        var output = Path.Combine(_dir, "out", "speech.jsonl");
        var audioDir = Path.Combine(_dir, "audio");
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        File.WriteAllText(output, "an older export, replaced as a whole");
        var r = await WorkersProcess.RunAsync(Env(db), "export", "speech", "--output", output, "--audio-dir", audioDir);

        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("", r.StdOut);
        Assert.DoesNotContain("warning", r.StdErr);
        Assert.Contains($"exported {expected.Count} segments ({expected.Sum(s => Math.Round(s.End, 3) - Math.Round(s.Start, 3)) / 3600:N2} h of speech)", r.StdErr);
        Assert.Contains($"audio: {expected.Count} segment files (wav) under {audioDir}; 0 segments without audio", r.StdErr);
        Assert.Equal([output], Directory.GetFiles(Path.GetDirectoryName(output)!)); // no temporary file left behind

        var lines = Lines(File.ReadAllText(output));
        Assert.Equal(expected.Count, lines.Count);
        expected.Sort((x, y) => string.CompareOrdinal(x.File, y.File) is var c && c != 0 ? c : x.Start.CompareTo(y.Start));
        Assert.Equal(expected.Select(s => s.File), lines.Select(l => l.GetProperty("file").GetString()));
        Assert.Equal(["a/one.wav", "a/two at 8k.wav", "b/c/three.wav", "five.flac", "five.wav"], lines.Select(l => l.GetProperty("file").GetString()).Distinct());
        Assert.Equal("a/one/500-1765.wav", lines[0].GetProperty("audio").GetString());

        var audioRoot = Path.GetFullPath(audioDir) + "/";
        var written = new HashSet<string>();
        for (var i = 0; i < lines.Count; i++)
        {
            var l = lines[i];
            var audio = l.GetProperty("audio").GetString()!;
            Assert.False(Path.IsPathRooted(audio), audio);
            Assert.DoesNotContain("..", audio.Split('/'));
            var full = Path.GetFullPath(Path.Combine(audioDir, audio));
            Assert.StartsWith(audioRoot, full);
            Assert.True(written.Add(full), $"two segments share {audio}");

            var (rate, channels, bits, samples) = ReadWav(full);
            Assert.Equal((16000, 1, 16), (rate, channels, bits));
            var duration = l.GetProperty("end").GetDouble() - l.GetProperty("start").GetDouble();
            Assert.True(Math.Abs(samples.Length / 16000.0 - duration) <= 0.001, $"{audio}: {samples.Length} samples for {duration} s");

            // 16 kHz 16-bit sources come out sample for sample, wherever the segment was reached from.
            if (expected[i].File is "a/one.wav" or "b/c/three.wav" or "five.wav")
            {
                var first = (long)Math.Round(expected[i].Start * 16000);
                for (var k = 0; k < samples.Length; k++)
                    if (samples[k] != NoiseSample(first + k)) Assert.Fail($"{audio}: sample {k} is {samples[k]}, the source has {NoiseSample(first + k)}");
            }
        }
        Assert.Equal(written.Count, Directory.GetFiles(audioDir, "*", SearchOption.AllDirectories).Length); // nothing else (no .partial files)
        Assert.Contains(lines, l => l.GetProperty("audio").GetString()!.StartsWith("five/"));
        Assert.Contains(lines, l => l.GetProperty("audio").GetString()!.StartsWith("five_wav/"));
    }

    [Fact]
    public async Task The_pipeline_setting_writes_segment_audio_without_any_flag()
    {
        await using var db = await pg.CreateSchemaAsync(migrate: false);
        var corpus = Path.Combine(_dir, "corpus");
        WriteNoiseWav(Path.Combine(corpus, "one.wav"), 12.5);
        Assert.Equal(0, (await WorkersProcess.RunAsync(Env(db), "enqueue", corpus, "--name", "team/set by pipeline", "--shard-minutes", "1")).ExitCode);
        var expected = await ProcessAsync(db);
        var root = Path.Combine(_dir, "segment-audio");
        var env = Env(db);
        env["Pipelines__vad__SegmentAudio__Root"] = root;
        env["Pipelines__vad__SegmentAudio__Format"] = "flac";
        var output = Path.Combine(_dir, "lines.jsonl");

        var r = await WorkersProcess.RunAsync(env, "export", "team/set by pipeline", "--output", output);

        Assert.True(r.ExitCode == 0, r.ToString());
        var folder = Path.Combine(root, "team_set by pipeline"); // one folder per corpus, its name made safe ("/" replaced; ".." parts are refused by the name rule)
        var lines = Lines(File.ReadAllText(output));
        Assert.Equal(expected.Count, lines.Count);
        Assert.All(lines, l => Assert.True(File.Exists(Path.Combine(folder, l.GetProperty("audio").GetString()!)), l.ToString()));
        Assert.All(lines, l => Assert.EndsWith(".flac", l.GetProperty("audio").GetString()));
    }

    [Fact]
    public async Task An_unfinished_corpus_exports_what_is_done_and_a_file_that_cannot_be_decoded_is_a_warning_not_a_failure()
    {
        await using var db = await pg.CreateSchemaAsync();
        var corpus = Path.Combine(_dir, "corpus");
        TestAudio.WriteWav(Path.Combine(corpus, "bad.wav"), 20);
        TestAudio.WriteWav(Path.Combine(corpus, "good.wav"), 20);
        var enq = await WorkersProcess.RunAsync(Env(db), "enqueue", corpus, "--name", "half", "--shard-minutes", "0.25");
        Assert.True(enq.ExitCode == 0, enq.ToString());
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM shards")); // each file in two items of 10 s
        var expected = await ProcessAsync(db, leaveQueued: 1);
        File.WriteAllText(Path.Combine(corpus, "bad.wav"), "this file was damaged after it was processed");

        var audioDir = Path.Combine(_dir, "audio");
        var r = await WorkersProcess.RunAsync(Env(db), "export", "half", "--audio-dir", audioDir);

        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("warning: 1 of 4 shards are not finished (queued 1); their segments are not in this export", r.StdErr);
        Assert.Contains("warning: no audio for 'bad.wav': ", r.StdErr);
        var bad = expected.Count(s => s.File == "bad.wav");
        var good = expected.Count - bad;
        Assert.Contains($"exported {expected.Count} segments", r.StdErr);
        Assert.Contains($"audio: {good} segment files (wav) under {audioDir}; {bad} segments without audio (source files that could not be decoded: 1)", r.StdErr);

        var lines = Lines(r.StdOut);
        Assert.Equal(expected.Count, lines.Count);
        Assert.All(lines.Where(l => l.GetProperty("file").GetString() == "bad.wav"), l => Assert.False(l.TryGetProperty("audio", out _)));
        Assert.All(lines.Where(l => l.GetProperty("file").GetString() == "good.wav"),
            l => Assert.True(File.Exists(Path.Combine(audioDir, l.GetProperty("audio").GetString()!))));
        Assert.False(Directory.Exists(Path.Combine(audioDir, "bad")), r.StdErr);
    }

    [Fact]
    public async Task Manifest_paths_that_leave_the_corpus_folder_get_audio_inside_the_audio_folder_also_as_flac()
    {
        await using var db = await pg.CreateSchemaAsync();
        var manifestDir = Path.Combine(_dir, "m");
        WriteNoiseWav(Path.Combine(_dir, "outside", "x.wav"), 8);
        var absolute = Path.Combine(_dir, "abs", "y.wav");
        WriteNoiseWav(absolute, 8);
        WriteNoiseWav(Path.Combine(manifestDir, "new\nline \"q\".wav"), 8);
        var paths = new[] { "../outside/x.wav", absolute, "new\nline \"q\".wav" };
        var manifest = Path.Combine(manifestDir, "m.jsonl");
        File.WriteAllLines(manifest, paths.Select(p => JsonSerializer.Serialize(new { path = p, duration = 8 })));
        var enq = await WorkersProcess.RunAsync(Env(db), "enqueue", manifest, "--name", "hostile");
        Assert.True(enq.ExitCode == 0, enq.ToString());
        var expected = await ProcessAsync(db);

        var audioDir = Path.Combine(_dir, "audio");
        var output = Path.Combine(_dir, "hostile.jsonl");
        var r = await WorkersProcess.RunAsync(Env(db), "export", "hostile", "--output", output, "--audio-dir", audioDir, "--audio-format", "flac");
        Assert.True(r.ExitCode == 0, r.ToString());

        var lines = Lines(File.ReadAllText(output));
        Assert.Equal(expected.Count, lines.Count);
        // Manifest paths are normalised (issue 13): one that leaves the manifest's folder is stored absolute.
        var stored = new[] { Path.GetFullPath(Path.Combine(manifestDir, paths[0])), absolute, paths[2] };
        Assert.Equal(stored.Order(StringComparer.Ordinal), lines.Select(l => l.GetProperty("file").GetString()!).Distinct());
        var folders = lines.Select(l => l.GetProperty("audio").GetString()!).Select(a => a[..a.LastIndexOf('/')]).Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(new[] { stored[0].TrimStart('/')[..^".wav".Length], absolute.TrimStart('/')[..^".wav".Length], "new_line \"q\"" }.Order(StringComparer.Ordinal), folders);
        var audioRoot = Path.GetFullPath(audioDir) + "/";
        expected.Sort((x, y) => string.CompareOrdinal(x.File, y.File) is var c && c != 0 ? c : x.Start.CompareTo(y.Start));
        for (var i = 0; i < lines.Count; i++)
        {
            var full = Path.GetFullPath(Path.Combine(audioDir, lines[i].GetProperty("audio").GetString()!));
            Assert.StartsWith(audioRoot, full);
            Assert.EndsWith(".flac", full);
            // FLAC is lossless: decoded again, it is the source's samples exactly.
            using var src = AudioDecoder.Open(full);
            var buf = new float[16000];
            var first = (long)Math.Round(expected[i].Start * 16000);
            long n = 0;
            for (int got; (got = src.Read(buf)) > 0; n += got)
                for (var k = 0; k < got; k++)
                    if ((short)Math.Round(buf[k] * 32768) != NoiseSample(first + n + k)) Assert.Fail($"{full}: sample {n + k} differs from the source");
            var duration = lines[i].GetProperty("end").GetDouble() - lines[i].GetProperty("start").GetDouble();
            Assert.True(Math.Abs(n / 16000.0 - duration) <= 0.001, $"{full}: {n} samples for {duration} s");
        }
        Assert.False(Directory.Exists(Path.Combine(_dir, "outside", "x")), "nothing is written outside the audio folder");
    }

    [Fact]
    public async Task An_audio_folder_that_cannot_be_written_fails_the_export_and_leaves_the_output_as_it_was()
    {
        await using var db = await pg.CreateSchemaAsync();
        var corpus = Path.Combine(_dir, "corpus");
        WriteNoiseWav(Path.Combine(corpus, "a", "x.wav"), 10);
        Assert.Equal(0, (await WorkersProcess.RunAsync(Env(db), "enqueue", corpus, "--name", "c")).ExitCode);
        await ProcessAsync(db);
        var output = Path.Combine(_dir, "out", "c.jsonl");
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        File.WriteAllText(output, "previous export");

        foreach (var format in new[] { "wav", "flac" })
        {
            var audioDir = Path.Combine(_dir, "audio-" + format);
            Directory.CreateDirectory(audioDir);
            File.WriteAllText(Path.Combine(audioDir, "a"), "a file where the folder for a/x.wav's segments must go");
            var r = await WorkersProcess.RunAsync(Env(db), "export", "c", "--output", output, "--audio-dir", audioDir, "--audio-format", format);
            Assert.True(r.ExitCode == 1, r.ToString());
            Assert.Contains($"error: cannot write segment audio 'a/x/", r.StdErr);
            Assert.Contains($"'{output}' was left as it was", r.StdErr);
            Assert.Equal("previous export", File.ReadAllText(output));
            Assert.Equal([output], Directory.GetFiles(Path.GetDirectoryName(output)!));
            Assert.Equal([Path.Combine(audioDir, "a")], Directory.GetFileSystemEntries(audioDir, "*", SearchOption.AllDirectories));
        }
    }

    [Fact]
    public async Task Bad_input_exits_2_with_a_clear_message_and_leaves_the_output_as_it_was()
    {
        await using var db = await pg.CreateSchemaAsync();
        var output = Path.Combine(_dir, "keep.jsonl");
        File.WriteAllText(output, "previous export");

        var unknown = await WorkersProcess.RunAsync(Env(db), "export", "no-such-corpus", "--output", output);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("No corpus named 'no-such-corpus'", unknown.StdErr);
        Assert.Equal("previous export", File.ReadAllText(output));
        Assert.Equal([output], Directory.GetFiles(_dir));

        var format = await WorkersProcess.RunAsync(Env(db), "export", "x", "--format", "csv", "--audio-format", "mp3");
        Assert.Equal(2, format.ExitCode);
        Assert.Contains("--format 'csv' is not supported", format.StdErr);
        Assert.Contains("--audio-format needs --audio-dir", format.StdErr);
        Assert.Contains("--audio-format 'mp3' is not supported: wav or flac", format.StdErr);

        TestAudio.WriteWav(Path.Combine(_dir, "c", "a.wav"), 3);
        Assert.Equal(0, (await WorkersProcess.RunAsync(Env(db), "enqueue", Path.Combine(_dir, "c"), "--name", "c")).ExitCode);
        var missingFolder = await WorkersProcess.RunAsync(Env(db), "export", "c", "--output", Path.Combine(_dir, "nope", "out.jsonl"));
        Assert.Equal(2, missingFolder.ExitCode);
        Assert.Contains("does not exist", missingFolder.StdErr);
        Assert.False(Directory.Exists(Path.Combine(_dir, "nope")));
    }
}
