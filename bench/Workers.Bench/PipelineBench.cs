using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;
using Npgsql;
using Workers.Audio;
using Workers.Audio.Synthesis;
using Workers.Bench.Sql;
using Workers.Cli.Commands;
using Workers.Cli.Hosting;
using Workers.Core.Options;
using Workers.Fleet.Worker;
using Workers.Onnx;
using Workers.Pipeline.Processing;
using Workers.Pipeline.Vad;
using Workers.Postgres.Corpora;
using Workers.Postgres.Sql;

namespace Workers.Bench;

/// <summary>
/// Issue 10: per format, in one run and on the same cores, the whole pipeline against its limit.
/// <list type="bullet">
/// <item><b>bare</b>: batched Silero alone (SileroBench, tensors prefilled), one thread per core at once, as sustained over
///   all its runs: audio scored over wall time, as decode alone and the whole run are measured. (The median run flatters it
///   by about 2%, leaving out the runs that a scheduler or the cache slowed, which the whole run pays; it is printed too.)</item>
/// <item><b>decode</b>: the decoder alone over the corpus (ffmpeg to 16 kHz mono float32; the project's
///   own reader for 16 kHz WAV), one decoder per core at once.</item>
/// <item>Both are measured warm, over at least <see cref="MinSeconds"/>, just before the whole run and again just
///   after it; each is the mean of the two.</item>
/// <item><b>limit</b> = 1 / (1/bare + 1/decode): both jobs done on the same cores one after the other.</item>
/// <item><b>whole run</b>: <c>workers run --cpu-workers N --until-idle</c> on the enqueued corpus, wall
///   time from start to exit (process start-up and model loading included).</item>
/// <item><b>decode-bound</b>: the same shards through <see cref="ShardProcessor"/> in this process, N
///   workers with the same core split, but a model that costs nothing (<see cref="ZeroCostVadModel"/>,
///   a test double that exists only here): what keeps a GPU fed, against decode alone.</item>
/// </list>
/// The corpus of each format is the same speech: four distinct generated files of exactly 5 minutes,
/// encoded once per format and copied whole until there are the hours asked for, rounded up to whole
/// 30-minute shards, the same number for every worker. A shard count that does not divide among
/// the workers leaves all but one idle at the end (2.08 h in five shards over two workers: 0.875 at
/// best), which says nothing about decoding or inference; this bench keeps that tail out.
/// Hosted like a `workers` command: the models folder, the default pipeline's VAD settings, Fleet:DecoderThreads
/// and Audio (validated when the host started), and the enqueue and node launcher `workers` itself uses, by constructor.
/// </summary>
public sealed class PipelineBench(ModelFolder models, WorkersDatabase database, EnqueueCommand.Handler enqueue, RunCommand.Launcher launcher,
    IOptions<FleetOptions> fleet, IOptions<PipelinesOptions> pipelines, IOptions<AudioDecoderOptions> decoderOptions, TimeProvider time)
{
    /// <summary>The formats measured, in order: name, file extension, ffmpeg arguments from the 16 kHz mono WAV (null: that WAV itself).</summary>
    public static readonly IReadOnlyList<(string Name, string Extension, string[]? Encode)> Formats =
    [
        ("wav16k", "wav", null),
        ("wav44k", "wav", ["-ar", "44100", "-c:a", "pcm_s16le"]),
        ("flac", "flac", ["-ar", "44100", "-c:a", "flac"]),
        ("mp3", "mp3", ["-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"]),
        ("opus", "opus", ["-c:a", "libopus", "-b:a", "32k"]),
    ];

    private const double ShardMinutes = 30;
    /// <summary>The length of the corpus's files by default: 5 minutes, six to a shard.</summary>
    public const double DefaultFileSeconds = 300;
    // Enqueue's shard target: 30 min of audio plus room for what a container adds to a file's probed
    // length (an MP3 encoder's padding), so a sixth 5-minute file still fits its shard.
    private const double EnqueueShardMinutes = ShardMinutes + 0.5;

    /// <param name="workersFolder">Where the worker processes' workers.dll is (a published build); null: this build's.</param>
    /// <param name="fileSeconds">The length of every file of the corpus (a whole number of them fills a 30-minute shard).</param>
    public async Task<int> RunAsync(double hours, IReadOnlyList<string> formats, int workers, CancellationToken ct, string? workersFolder = null, double fileSeconds = DefaultFileSeconds, int rounds = 1)
    {
        string? workersDll = null;
        if (workersFolder is not null)
        {
            workersDll = Path.GetFullPath(Path.Combine(workersFolder, "workers.dll"));
            if (!File.Exists(workersDll))
                throw new ArgumentException($"--workers {workersFolder}: there is no workers.dll there. Give the folder of `dotnet publish src/Workers.Cli -c Release -r linux-x64 -o DIR`.");
        }
        var unknown = formats.Where(f => Formats.All(x => x.Name != f)).ToList();
        var filesPerShard = (int)Math.Round(ShardMinutes * 60 / fileSeconds);
        var badFileSeconds = !(fileSeconds >= 1) || Math.Abs(filesPerShard * fileSeconds - ShardMinutes * 60) > 1e-6;
        if (unknown.Count > 0 || hours <= 0 || workers < 1 || badFileSeconds || rounds < 1)
            throw new ArgumentException(string.Join(" ", new[]
            {
                unknown.Count > 0 ? $"Unknown format(s) {string.Join(", ", unknown)}: choose from {string.Join(", ", Formats.Select(f => f.Name))}." : null,
                hours <= 0 ? $"--hours must be positive (is {hours})." : null,
                workers < 1 ? $"--cpu-workers must be at least 1 (is {workers})." : null,
                rounds < 1 ? $"--rounds must be at least 1 (is {rounds})." : null,
                badFileSeconds ? $"--file-seconds must divide a 30-minute shard into whole files, at least 1 s each, e.g. 10, 60 or 300 (is {fileSeconds})." : null,
            }.Where(x => x is not null)));

        var cores = Environment.ProcessorCount;
        var coresPerWorker = Math.Max(1, cores / workers);
        var split = new WorkerOptions { DecoderThreads = fleet.Value.DecoderThreads }.SplitCores(coresPerWorker);
        var env = OrtEnvironment.Load();
        var pipeline = pipelines.Value.Get(PipelinesOptions.Default);
        var batchSize = pipeline.BatchSize;
        var model = models.Catalog().Resolve(ModelCatalog.SileroVadV5, models.Root);
        var vad = pipeline.Vad;
        var decoder = decoderOptions.Value;
        Console.WriteLine($"bench pipeline: {hours:0.##} h per format, {workers} CPU worker(s) x {coresPerWorker} core(s) "
                          + $"({split.Decoders} decoder thread(s) + {split.IntraOp} intra-op thread(s) each), batch {batchSize}, {cores} cores, load {LoadAverage()}; "
                          + $"workers from {workersDll ?? "this build"}");

        var db = await database.OpenAsync(ct);
        var dir = Directory.CreateTempSubdirectory("workers-bench-pipeline-").FullName;
        try
        {
            // The distinct speech every format is made of.
            var gen = new SpeechCorpusGenerator(Path.Combine(dir, ".espeak"));
            var rng = new Random(42);
            var baseFiles = new List<(string Path, double Seconds)>();
            var filesPerRound = filesPerShard * workers;
            var fileCount = (int)Math.Ceiling(hours * 3600 / (fileSeconds * filesPerRound)) * filesPerRound;
            Console.Error.WriteLine($"bench: generating {Math.Min(4, fileCount) * fileSeconds / 60:0.#} min of distinct speech ...");
            for (var i = 0; i < Math.Min(4, fileCount); i++)
            {
                var wav = Path.Combine(dir, "base", $"b{i:000}.wav");
                Directory.CreateDirectory(Path.GetDirectoryName(wav)!);
                gen.WriteWav(wav, fileSeconds, rng);
                baseFiles.Add((wav, fileSeconds));
            }

            var rows = new List<Row>();
            foreach (var format in Formats.Where(f => formats.Contains(f.Name)))
            {
                var corpus = Path.Combine(dir, format.Name);
                var files = MakeCorpus(baseFiles, format, corpus, fileCount);
                var audio = files.Sum(f => f.Seconds);

                // The limits, measured before each whole run and again after it, each figure the mean of the two: on a shared
                // machine the cores' speed drifts by a tenth within minutes, and a limit taken only before the run judged it
                // against a moment it did not run in. Rounds alternate: limits, run, limits, run, limits; each run is judged
                // by the two measurements beside it (shared with its neighbours), and the row is the round of median ratio.
                var groups = Groups(files, new DecodeAheadOptions { GroupSeconds = fleet.Value.DecodeGroupSeconds });
                var decodeFolder = Path.Combine(dir, "decode-alone");
                Directory.CreateDirectory(decodeFolder);
                var limits = new List<(double Bare, double BareMedian, double Decode)> { Limits(groups, audio, env, model, batchSize, decoder, cores, decodeFolder, ct) };
                var runs = new List<Round>();
                for (var k = 0; k < rounds; k++)
                {
                    // The whole run: enqueue, then workers until idle, start-up included.
                    var queue = $"bench-{format.Name}-{Guid.NewGuid():N}"[..24];
                    var rc = await enqueue.RunAsync(new EnqueueCommand.Request(corpus, queue, EnqueueShardMinutes, "vad", queue, 0, false, Json: false), ct);
                    if (rc != 0) return rc;
                    var launched = await ReadClockAsync(db, ct);
                    var sw = Stopwatch.StartNew();
                    rc = await launcher.RunWorkersAsync(workers, coresPerWorker, queue, untilIdle: true, ct, workersDll);
                    sw.Stop();
                    if (rc != 0) return rc;
                    var info = await new CorpusStatusReader(db).GetStatusAsync(queue, ct);
                    var spans = await RunSpansAsync(db, info.Corpus.Id, launched, ct);
                    await new CorpusAdmin(db, time).DeleteAsync(info.Corpus.Id, ct);
                    limits.Add(Limits(groups, audio, env, model, batchSize, decoder, cores, decodeFolder, ct));
                    var (before, after) = (limits[k], limits[k + 1]);
                    var round = new Round(info.ProcessedSeconds, info.ProcessedSeconds / sw.Elapsed.TotalSeconds, (before.Bare + after.Bare) / 2, (before.Decode + after.Decode) / 2,
                        spans.StartupSeconds, spans.ShardSeconds > 0 ? info.ProcessedSeconds / spans.ShardSeconds : 0, info.Segments, info.FailedFilesTotal);
                    runs.Add(round);
                    Console.Error.WriteLine($"bench: {format.Name}: round {k + 1} of {rounds}: whole {round.Whole:N0}x, limit {round.Limit:N0}x, ratio {round.Ratio:0.00}; "
                                            + $"start-up {round.StartupSeconds:0.00} s a worker, in shards {round.InShards:N0}x; "
                                            + $"bare {before.Bare:N0}x before, {after.Bare:N0}x after (at the median run {before.BareMedian:N0}x and {after.BareMedian:N0}x); decode {before.Decode:N0}x before, {after.Decode:N0}x after");
                }

                // Decode-bound: the same split, a model that costs nothing; warm, over at least MinSeconds, as decode alone.
                var decodeBound = DecodeBound(files, workers, batchSize, split.Decoders, fleet.Value.DecodeGroupSeconds, vad, decoder, Path.Combine(dir, "decode-bound"), ct);
                // Item 3 compares decode-bound with ffmpeg decoding alone, as the issue first measured it: one ffmpeg per file.
                // Decode alone, the stricter reference, decodes as the pipeline does: the 16 kHz WAV by our reader, the rest by
                // one ffmpeg per group of files (Fleet:DecodeGroupSeconds); both are printed.
                var ffmpegDecode = Rate(audio, () => Parallel.ForEach(files, new ParallelOptions { MaxDegreeOfParallelism = cores, CancellationToken = ct }, f => FfmpegDecodeAll(f.Path)));

                var row = new Row(format.Name, runs, decodeBound, ffmpegDecode);
                rows.Add(row);
                Console.Error.WriteLine($"bench: {format.Name}: ratio {row.Median.Ratio:0.00} (the median of {runs.Count} round(s), {row.LowestRatio:0.00}-{row.HighestRatio:0.00}); decode-bound {row.DecodeBound:N0}x vs decode {row.Median.Decode:N0}x, vs ffmpeg {row.FfmpegDecode:N0}x");
                Directory.Delete(corpus, true);
            }

            Console.WriteLine();
            Console.WriteLine($"whole pipeline vs its limit, {workers} CPU worker(s) x {coresPerWorker} core(s), batch {batchSize}, {cores} cores; x realtime; load after: {LoadAverage()}");
            Console.WriteLine("  format   hours   whole run   bare infer   decode alone      limit   ratio   rounds   lowest-highest   start-up s   in shards   ratio   decode-bound   vs decode   vs ffmpeg   segments   failed files");
            foreach (var r in rows)
            {
                var m = r.Median;
                Console.WriteLine($"  {r.Format,-6}   {m.ProcessedSeconds / 3600,5:0.00}   {m.Whole,9:N0}   {m.Bare,10:N0}   {m.Decode,12:N0}   {m.Limit,8:N0}   {m.Ratio,5:0.00}   {r.Rounds.Count,6}   {r.LowestRatio,7:0.00}-{r.HighestRatio,-6:0.00}   {m.StartupSeconds,10:0.00}   {m.InShards,9:N0}   {m.InShardsRatio,5:0.00}   "
                                  + $"{r.DecodeBound,12:N0}   {r.DecodeBound / m.Decode,9:0.00}   {r.DecodeBound / r.FfmpegDecode,9:0.00}   {m.Segments,8:N0}   {m.FailedFiles,12:N0}");
            }
            Console.WriteLine("  whole run: wall time of `workers run --until-idle`, start-up included; limit = 1/(1/bare + 1/decode);");
            Console.WriteLine("  start-up s: from launching the workers to a worker's first claim, the mean of the workers; in shards: the audio over the span from");
            Console.WriteLine("  the first claim to the last shard's end, and its ratio to the limit (both on the database's clock): the whole run less the processes'");
            Console.WriteLine("  start and exit, which a node pays once for days of audio and this run once per format;");
            Console.WriteLine($"  bare and decode: each the mean of a measurement just before the whole run and one just after, warm, over at least {MinSeconds:0} s;");
            Console.WriteLine("  rounds: whole runs per format (--rounds), alternating with the measurements of bare and decode, each run judged by the two");
            Console.WriteLine("  beside it; the row is the round of median ratio (of an even count, the lower middle one), lowest-highest the ratios of all rounds;");
            Console.WriteLine("  bare: audio scored over the wall time of all its runs (the median run's rate is on the bench's stderr line);");
            Console.WriteLine("  decode-bound: the same shards and core split with a model that costs nothing (the GPU-shaped case), warm, over at least the same time;");
            Console.WriteLine($"  decode alone: as the pipeline decodes (16 kHz WAV: our reader; the rest: one ffmpeg per group of up to {fleet.Value.DecodeGroupSeconds:0} s of files of up to {DecodeAheadOptions.MaxGroupItemSeconds:0} s each, or of any length for WAV, FLAC, MP3 and Opus read from their start, Fleet:DecodeGroupSeconds; longer ones one ffmpeg each), one decoder per core;");
            Console.WriteLine("  vs ffmpeg: decode-bound against ffmpeg alone as the issue first measured it: one ffmpeg per file to 16 kHz mono float, one per core.");
            return ExitCodes.Ok;
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>One whole run and the limits measured beside it (bare and decode: the means of the measurements before and after).</summary>
    private sealed record Round(double ProcessedSeconds, double Whole, double Bare, double Decode, double StartupSeconds, double InShards, long Segments, long FailedFiles)
    {
        public double Limit => 1 / (1 / Bare + 1 / Decode);
        public double Ratio => Whole / Limit;
        public double InShardsRatio => InShards / Limit;
    }

    /// <summary>A format's rounds and its decode-bound figures; its table row is the round of median ratio (of an even count,
    /// the lower of the middle two): one slow or fast moment of the machine moves the range, not the row.</summary>
    private sealed record Row(string Format, IReadOnlyList<Round> Rounds, double DecodeBound, double FfmpegDecode)
    {
        public Round Median { get; } = Rounds.OrderBy(r => r.Ratio).ElementAt((Rounds.Count - 1) / 2);
        public double LowestRatio => Rounds.Min(r => r.Ratio);
        public double HighestRatio => Rounds.Max(r => r.Ratio);
    }

    /// <summary>What a whole run's shard attempts say about it: its workers' mean start-up (launch to first claim) and the
    /// span from the first claim to the last finish, in seconds.</summary>
    private sealed record RunSpans(double StartupSeconds, double ShardSeconds);

    /// <summary>The database's clock (where a run's claims are stamped), read just before the workers are launched.</summary>
    private static async Task<DateTime> ReadClockAsync(NpgsqlDataSource db, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        return await DbClock.ReadAsync(conn, ct);
    }

    private static async Task<RunSpans> RunSpansAsync(NpgsqlDataSource db, long corpus, DateTime launched, CancellationToken ct)
    {
        await using var cmd = BenchSql.Command(db, "PipelineRunSpans");
        cmd.Parameters.AddWithValue("corpus", corpus);
        cmd.Parameters.AddWithValue("launched", launched);
        return await Spans.SingleAsync(cmd, ct);
    }

    private static readonly RowMap<RunSpans> Spans = new("PipelineRunSpans", c =>
    {
        var startup = c.Column<double>("startup_seconds");
        var shards = c.Column<double>("shard_seconds");
        return r => new RunSpans(r.Get(startup), r.Get(shards));
    });

    /// <summary>Encodes each distinct file once in <paramref name="format"/>, then copies them round-robin into <paramref name="count"/> files.</summary>
    private static List<(string Path, double Seconds)> MakeCorpus(List<(string Path, double Seconds)> baseFiles, (string Name, string Extension, string[]? Encode) format, string corpus, int count)
    {
        Console.Error.WriteLine($"bench: making {count * baseFiles[0].Seconds / 3600:0.##} h of {format.Name} ...");
        var encoded = Path.Combine(corpus, ".encoded");
        Directory.CreateDirectory(encoded);
        var sources = baseFiles.AsParallel().AsOrdered().Select(b =>
        {
            var path = Path.Combine(encoded, Path.GetFileNameWithoutExtension(b.Path) + "." + format.Extension);
            if (format.Encode is null) File.Copy(b.Path, path);
            else Ffmpeg(["-nostdin", "-v", "error", "-y", "-i", b.Path, .. format.Encode, path]);
            return (path, b.Seconds);
        }).ToList();
        var files = new List<(string Path, double Seconds)>();
        while (files.Count < count)
        {
            var (src, s) = sources[files.Count % sources.Count];
            var path = Path.Combine(corpus, $"f{files.Count:0000}.{format.Extension}");
            File.Copy(src, path);
            files.Add((path, s));
        }
        Directory.Delete(encoded, true);
        // Written back now, not during the measurements: 8 hours of 44.1 kHz WAV are 2.5 GB of dirty pages, whose
        // write-back took the first shards of a whole run from 480x to 360x (measured) while the limits before it had
        // read only the page cache.
        Run("sync", []);
        return files;
    }

    /// <summary>The corpus's files in the groups a decoder thread takes them in (<see cref="DecodeAheadOptions.GroupSeconds"/>).</summary>
    private static List<AudioRange[]> Groups(List<(string Path, double Seconds)> files, DecodeAheadOptions options)
    {
        var groups = new List<AudioRange[]>();
        for (var i = 0; i < files.Count;)
        {
            var (path, seconds) = files[i++];
            List<AudioRange> group = [new(path, 0, null)];
            if (DecodeAheadOptions.IsGroupable(seconds, path, 0))
                for (; i < files.Count && options.Joins(group.Count, seconds, files[i].Seconds, files[i].Path, 0); i++)
                {
                    group.Add(new AudioRange(files[i].Path, 0, null));
                    seconds += files[i].Seconds;
                }
            groups.Add([.. group]);
        }
        return groups;
    }

    /// <summary>Decodes a group as a decoder thread does: one ffmpeg for the files it decodes (<see cref="AudioDecoder.OpenGroup"/>).</summary>
    private static void DecodeAll(AudioRange[] group, AudioDecoderOptions options, string folder)
    {
        var buffer = new float[16384];
        foreach (var (source, range) in AudioDecoder.OpenGroup(group, options, folder, CancellationToken.None).Zip(group))
        {
            using var s = source ?? AudioDecoder.Open(range.Path, options: options);
            while (s.Read(buffer) > 0) { }
        }
    }

    /// <summary>ffmpeg alone: the file to 16 kHz mono float, written to /dev/null (what the issue's limits were first measured with).</summary>
    private static void FfmpegDecodeAll(string path) =>
        Ffmpeg(["-nostdin", "-v", "error", "-i", path, "-f", "f32le", "-ac", "1", "-ar", "16000", "-y", "/dev/null"]);

    /// <summary>
    /// Bare batched inference and decode alone, one thread (one decoder) per core at once, both warm: the
    /// decoder after a pass over the first files (cold, the 16 kHz WAV reader's code ran at a sixth of its speed,
    /// 6,085x against 43,482x, measured), then over the corpus again until <see cref="MinSeconds"/> have passed.
    /// Bare: two vCPUs may be one physical core, so doubling one thread's figure would flatter it.
    /// </summary>
    private static (double Bare, double BareMedian, double Decode) Limits(List<AudioRange[]> groups, double audio, OrtEnvironment env, string model,
        int batchSize, AudioDecoderOptions decoder, int cores, string folder, CancellationToken ct)
    {
        Parallel.ForEach(groups.Take(cores), g => DecodeAll(g, decoder, folder));
        var decode = Rate(audio, () => Parallel.ForEach(groups, new ParallelOptions { MaxDegreeOfParallelism = cores, CancellationToken = ct }, g => DecodeAll(g, decoder, folder)));
        var bare = Task.WhenAll(Enumerable.Range(0, cores).Select(_ => Task.Factory.StartNew(() =>
            SileroBench.Run(env, model, new SileroBenchOptions { BatchSizes = [batchSize], MinSecondsPerBatchSize = MinSeconds }).Results[0],
            ct, TaskCreationOptions.LongRunning, TaskScheduler.Default))).GetAwaiter().GetResult();
        return (bare.Sum(r => r.SustainedXRealtime), bare.Sum(r => r.XRealtime), decode);
    }

    /// <summary>Seconds a figure is measured over at least (repeating passes over the corpus): a 2-hour 16 kHz WAV
    /// corpus decodes in a tenth of a second, which a scheduler hiccup would decide.</summary>
    private const double MinSeconds = 3;

    /// <summary>Audio seconds per wall second of <paramref name="pass"/> (<paramref name="audio"/> seconds each), repeated until <see cref="MinSeconds"/> passed.</summary>
    private static double Rate(double audio, Action pass)
    {
        var sw = Stopwatch.StartNew();
        var passes = 0;
        do
        {
            pass();
            passes++;
        }
        while (sw.Elapsed.TotalSeconds < MinSeconds);
        return passes * audio / sw.Elapsed.TotalSeconds;
    }

    /// <summary>x realtime of <paramref name="workers"/> shard loops over the corpus cut into shards, scoring with a model
    /// that costs nothing: after one untimed shard per worker (the code path warm, as decode alone's is), over the
    /// whole corpus until <see cref="MinSeconds"/> have passed.</summary>
    private static double DecodeBound(List<(string Path, double Seconds)> files, int workers, int batchSize, int decoderThreads, double groupSeconds, VadOptions vad, AudioDecoderOptions decoder, string temp, CancellationToken ct)
    {
        var all = new List<List<ProcessItem>>();
        var shard = new List<ProcessItem>();
        double inShard = 0;
        foreach (var (path, seconds) in files)
        {
            shard.Add(new ProcessItem(shard.Count, path, 0, seconds));
            if ((inShard += seconds) >= ShardMinutes * 60) { all.Add(shard); shard = []; inShard = 0; }
        }
        if (shard.Count > 0) all.Add(shard);
        var options = new DecodeAheadOptions { DecoderThreads = decoderThreads, GroupSeconds = groupSeconds };

        void Pass(IEnumerable<List<ProcessItem>> shards)
        {
            var queue = new ConcurrentQueue<List<ProcessItem>>(shards);
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers, CancellationToken = ct }, w =>
            {
                var folder = Path.Combine(temp, w.ToString(CultureInfo.InvariantCulture));
                Directory.CreateDirectory(folder);
                while (queue.TryDequeue(out var items))
                {
                    using var batcher = new VadBatcher(new ZeroCostVadModel(batchSize), vad);
                    var output = new ShardProcessor(batcher, vad, decoder, options).Process(items, null, ct, folder);
                    if (output.Failures.Count > 0) throw new InvalidOperationException($"decode-bound run: {output.Failures[0].Error}");
                }
            });
        }

        Pass(all.Take(workers));
        return Rate(files.Sum(f => f.Seconds), () => Pass(all));
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";

    private static void Ffmpeg(IReadOnlyList<string> args) => Run("ffmpeg", args);

    private static void Run(string program, IReadOnlyList<string> args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{program} could not be started.");
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({p.ExitCode}): {err}");
    }

    /// <summary>A VAD model that costs nothing: every window is silence. Only for the decode-bound figure.</summary>
    private sealed class ZeroCostVadModel(int batchCapacity) : IVadModel
    {
        public int BatchCapacity => batchCapacity;
        public int StateSize => 0;
        public void ResetState(Span<float> streamState) { }
        public void Run(ReadOnlySpan<float> windows, Span<float> states, Span<float> probabilities, int batchSize) => probabilities.Clear();
    }
}
