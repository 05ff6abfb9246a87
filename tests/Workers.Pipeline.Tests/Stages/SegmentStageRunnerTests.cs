using Workers.Audio;
using Workers.Onnx;
using Workers.Pipeline.Processing;
using Workers.Pipeline.Stages;
using Workers.Stages;
using Workers.Stages.Models;

namespace Workers.Pipeline.Tests.Stages;

/// <summary>The model stages read the items' speech ranges again after the VAD: that second open is
/// confined to the corpus root recorded at enqueue, like the VAD's own (issue 13).</summary>
public sealed class SegmentStageRunnerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-stage-runner-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void A_file_swapped_for_a_link_out_of_the_corpus_root_is_refused_by_the_stages_too()
    {
        var root = Directory.CreateDirectory(Path.Combine(_dir, "corpus")).FullName;
        var outside = Directory.CreateDirectory(Path.Combine(_dir, "elsewhere")).FullName;
        var rng = new Random(3);
        Pcm16Wav.Write(Path.Combine(root, "inside.wav"), 16000, 32000, _ => (short)rng.Next(-3000, 3000));
        Pcm16Wav.Write(Path.Combine(outside, "secret.wav"), 16000, 32000, _ => (short)rng.Next(-3000, 3000));
        File.CreateSymbolicLink(Path.Combine(root, "swapped.wav"), Path.Combine(outside, "secret.wav"));
        // As a worker does at start-up: the process's ORT environment is Workers' own (with its logging
        // callback) before any session exists; without this, the stage's session created the default
        // one and the Silero fixture of the tests that ran after it failed to load (OrtEnvironment.Load).
        OrtEnvironment.Load();
        var model = Path.Combine(_dir, "energy.onnx");
        File.WriteAllBytes(model, ReferenceModels.EnergyProjection());
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "energy", Model = "energy" });
        var runner = new SegmentStageRunner([stage]);
        FoundSegment[] segments = [new(0, 0.5, 1.5)];

        // Inside the root: read and scored.
        var ok = runner.Run([new ProcessItem(0, Path.Combine(root, "inside.wav"), 0, 2, root)], segments, CancellationToken.None);
        Assert.Single(ok);

        // The same range of a file that now resolves outside the root: refused, never read.
        var e = Assert.Throws<CorpusFileRejectedException>(() =>
            runner.Run([new ProcessItem(0, Path.Combine(root, "swapped.wav"), 0, 2, root)], segments, CancellationToken.None));
        Assert.Contains("outside the corpus", e.Message);
    }
}
