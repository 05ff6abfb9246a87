using System.Diagnostics;
using Workers.Stages;
using Workers.Stages.Models;

namespace Workers.Bench;

/// <summary>
/// The model-stage row of <c>workers-bench pipeline</c> (issue 15): one stage over generated speech
/// segments (lengths spread like VAD output, 0.3 to 20 s) at several <c>BatchSeconds</c>, against
/// the same model run bare on the same audio in one big batch (every segment's samples
/// concatenated into one row: no padding, no batching, one call). The model is
/// <see cref="ReferenceModels.ConvFeatures"/> (a 25 ms / 10 ms, 64-filter strided convolution),
/// since no speech model beyond Silero can be fetched here. One thread, as one worker's share.
/// </summary>
public static class ModelStageBench
{
    public static readonly double[] BatchSecondsTried = [5, 20, 60, 200];

    public static void Run(double audioSeconds, int threads, TextWriter output)
    {
        var dir = Directory.CreateTempSubdirectory("workers-bench-stage-").FullName;
        try
        {
            var model = Path.Combine(dir, "conv.onnx");
            File.WriteAllBytes(model, ReferenceModels.ConvFeatures());
            var segments = Segments(audioSeconds, new Random(3));
            var total = segments.Sum(s => s.Samples.Length) / (double)ModelStageOptions.SampleRate;
            using var so = new Microsoft.ML.OnnxRuntime.SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 };

            // Bare: the same model, one call over one row holding every segment's samples.
            var all = new float[segments.Sum(s => s.Samples.Length)];
            var at = 0;
            foreach (var s in segments) { s.Samples.Span.CopyTo(all.AsSpan(at)); at += s.Samples.Length; }
            double bare;
            using (var session = new Microsoft.ML.OnnxRuntime.InferenceSession(model, so))
            using (var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(all, [1, all.Length]))
            using (var run = new Microsoft.ML.OnnxRuntime.RunOptions())
            {
                session.Run(run, ["waveform"], [input], session.OutputNames).Dispose(); // warm-up
                bare = Median(3, () => session.Run(run, ["waveform"], [input], session.OutputNames).Dispose());
            }

            output.WriteLine();
            output.WriteLine($"model stage: {segments.Count:N0} segments, {total:N0} s of speech, 64-filter conv front end, {threads} intra-op thread(s)");
            output.WriteLine("  BatchSeconds   batches   segments/s   x-realtime   vs bare");
            output.WriteLine($"  {"bare",12}   {1,7}   {segments.Count / bare,10:N0}   {total / bare,10:N0}   {1.0,7:0.00}");
            foreach (var batchSeconds in BatchSecondsTried)
            {
                using var stage = new ModelStage(model, new ModelStageOptions { Name = "conv", Model = "conv", BatchSeconds = batchSeconds, MaxSegmentSeconds = 30 }, so);
                stage.WarmUp();
                var before = stage.BatchesRun;
                stage.Run(segments);
                var batches = stage.BatchesRun - before;
                var wall = Median(3, () => stage.Run(segments));
                output.WriteLine($"  {batchSeconds,12:0}   {batches,7:N0}   {segments.Count / wall,10:N0}   {total / wall,10:N0}   {bare / wall,7:0.00}");
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>Segments of 0.3 to 20 s (most short, as VAD gives them) of noise, adding up to about <paramref name="seconds"/>.</summary>
    private static List<StageSegment> Segments(double seconds, Random rng)
    {
        var list = new List<StageSegment>();
        for (double left = seconds; left > 0;)
        {
            var len = Math.Min(left, 0.3 + Math.Pow(rng.NextDouble(), 2) * 19.7);
            left -= len;
            var s = new float[Math.Max(1, (int)(len * ModelStageOptions.SampleRate))];
            for (var i = 0; i < s.Length; i++) s[i] = (float)(rng.NextDouble() - 0.5) * 0.3f;
            list.Add(new StageSegment(list.Count, s));
        }
        return list;
    }

    private static double Median(int runs, Action action)
    {
        var times = new double[runs];
        for (var i = 0; i < runs; i++)
        {
            var t = Stopwatch.GetTimestamp();
            action();
            times[i] = Stopwatch.GetElapsedTime(t).TotalSeconds;
        }
        Array.Sort(times);
        return times[runs / 2];
    }
}
