using System.Diagnostics;

using Workers.Onnx;
using Workers.Pipeline.Vad;

namespace Workers.Bench;

/// <summary>Settings for <see cref="SileroBench.Run"/>.</summary>
public sealed class SileroBenchOptions
{
    /// <summary>Batch sizes (streams per run) to measure.</summary>
    /// <value>The default value is 1, 8, 32, 128.</value>
    public IReadOnlyList<int> BatchSizes { get; set; } = [1, 8, 32, 128];

    /// <summary>Untimed runs per batch size before measuring.</summary>
    /// <value>The default value is 50.</value>
    public int WarmupRuns { get; set; } = 50;

    /// <summary>Timed runs per batch size go on until both this many were made and
    /// <see cref="MinSecondsPerBatchSize"/> passed (or <see cref="MaxRuns"/> were made).</summary>
    /// <value>The default value is 30.</value>
    public int MinRuns { get; set; } = 30;

    /// <summary>See <see cref="MinRuns"/>.</summary>
    /// <value>The default value is 3 seconds.</value>
    public double MinSecondsPerBatchSize { get; set; } = 3;

    /// <summary>Cap on timed runs per batch size.</summary>
    /// <value>The default value is 20000.</value>
    public int MaxRuns { get; set; } = 20000;

    /// <summary>Session settings; the default measures one intra-op thread on CPU.</summary>
    public OnnxSessionOptions Session { get; set; } = new() { ExecutionProvider = OnnxExecutionProvider.Cpu, IntraOpThreads = 1 };
}

/// <summary>One batch size's figures.</summary>
/// <param name="BatchSize">Streams (rows) per run.</param>
/// <param name="Runs">Timed runs.</param>
/// <param name="MedianMicroseconds">Median wall time of one run.</param>
/// <param name="P90Microseconds">90th percentile of one run.</param>
/// <param name="XRealtime">Audio seconds scored per wall second at the median: BatchSize x 32 ms / median.</param>
/// <param name="BytesPerRun">Managed bytes allocated per timed run on the running thread (0 expected).</param>
/// <param name="MeanMicroseconds">Mean wall time of one run: every timed run's time, the slow ones included.</param>
/// <param name="SustainedXRealtime">Audio seconds scored per wall second over all timed runs: BatchSize x 32 ms / mean. What a
/// loop of runs sustains, as a throughput is measured (<see cref="XRealtime"/> leaves out the runs the scheduler or a cache
/// slowed, which a whole run pays too).</param>
public sealed record SileroBenchResult(int BatchSize, int Runs, double MedianMicroseconds, double P90Microseconds, double XRealtime, double BytesPerRun,
    double MeanMicroseconds, double SustainedXRealtime);

/// <summary>What <see cref="SileroBench.Run"/> measured, and on what.</summary>
public sealed record SileroBenchReport(
    string ModelPath, string OnnxRuntimeVersion, string ExecutionProvider, int IntraOpThreads, IReadOnlyList<SileroBenchResult> Results)
{
    /// <summary>A plain-text table, one batch size a line.</summary>
    public string ToTable()
    {
        var lines = new List<string>
        {
            $"Silero VAD {Path.GetFileName(ModelPath)}, ONNX Runtime {OnnxRuntimeVersion}, {ExecutionProvider}, intra-op threads {IntraOpThreads}",
            "batch      runs   median us      p90 us     mean us   x-realtime   sustained   bytes/run",
        };
        foreach (var r in Results)
            lines.Add(FormattableString.Invariant($"{r.BatchSize,5} {r.Runs,9} {r.MedianMicroseconds,11:F1} {r.P90Microseconds,11:F1} {r.MeanMicroseconds,11:F1} {r.XRealtime,12:F0} {r.SustainedXRealtime,11:F0} {r.BytesPerRun,11:F1}"));
        return string.Join(Environment.NewLine, lines);
    }
}

/// <summary>Throughput measurements a <c>workers-bench</c> command can run.</summary>
public static class SileroBench
{
    /// <summary>Times <see cref="SileroVad.Run"/> per batch size: warm-up, then individually timed
    /// runs over noise-plus-tone input; reports the median per run, x-realtime (audio seconds per
    /// wall second) and the managed bytes allocated per run. The first run of each batch size also pays ORT's shape-specific planning, which
    /// the warm-up absorbs.</summary>
    public static SileroBenchReport Run(OrtEnvironment environment, string modelPath, SileroBenchOptions? options = null)
    {
        options ??= new SileroBenchOptions();
        using var session = OnnxSession.Create(environment, modelPath, options.Session);
        var results = new List<SileroBenchResult>();
        foreach (var batch in options.BatchSizes)
        {
            using var vad = new SileroVad(session, batch);
            var random = new Random(20240530);
            var ticks = new long[Math.Max(1, options.MaxRuns)];

            void Fill()
            {
                for (var b = 0; b < batch; b++)
                {
                    var w = vad.Window(b);
                    for (var i = 0; i < w.Length; i++)
                        w[i] = (0.3f * MathF.Sin(2 * MathF.PI * 220 * i / SileroVad.SampleRate)) + (0.05f * ((random.NextSingle() * 2) - 1));
                }
            }

            Fill();
            for (var i = 0; i < options.WarmupRuns; i++) vad.Run();

            var n = 0;
            var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            var started = Stopwatch.GetTimestamp();
            var minTicks = (long)(options.MinSecondsPerBatchSize * Stopwatch.Frequency);
            while (n < ticks.Length && (n < options.MinRuns || Stopwatch.GetTimestamp() - started < minTicks))
            {
                var t0 = Stopwatch.GetTimestamp();
                vad.Run();
                ticks[n++] = Stopwatch.GetTimestamp() - t0;
            }
            var bytesPerRun = (GC.GetAllocatedBytesForCurrentThread() - allocatedBefore) / (double)n;

            var sorted = ticks.AsSpan(0, n);
            long total = 0;
            foreach (var t in sorted) total += t;
            sorted.Sort();
            var median = ToMicroseconds(n % 2 == 1 ? sorted[n / 2] : (sorted[(n / 2) - 1] + sorted[n / 2]) / 2.0);
            var p90 = ToMicroseconds(sorted[Math.Min(n - 1, (int)Math.Ceiling(0.9 * n) - 1)]);
            var mean = ToMicroseconds(total / (double)n);
            var audioSeconds = batch * (double)SileroVad.WindowSamples / SileroVad.SampleRate;
            results.Add(new SileroBenchResult(batch, n, median, p90, audioSeconds / (median / 1e6), bytesPerRun, mean, audioSeconds / (mean / 1e6)));
        }
        return new SileroBenchReport(session.ModelPath, environment.Version, session.ExecutionProvider, options.Session.IntraOpThreads, results);
    }

    private static double ToMicroseconds(double ticks) => ticks * 1e6 / Stopwatch.Frequency;
}
