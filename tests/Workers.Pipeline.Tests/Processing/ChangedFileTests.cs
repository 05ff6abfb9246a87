using System.Diagnostics;
using Workers.Audio;
using Workers.Audio.Synthesis;
using Workers.Pipeline.Processing;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Processing;

/// <summary>
/// Issue 13: a file that changed after enqueue. Before the fix a 251 s WAV truncated to 10 s gave a
/// shard with 0 failed items and 241 s silently taken as silence; a FIFO hung the shard.
/// </summary>
[Collection(SileroCollection.Name)]
public sealed class ChangedFileTests(SileroFixture f)
{
    private ShardOutput Run(params ProcessItem[] items)
    {
        using var model = new SileroVadModel(f.Session, 8);
        using var batcher = new VadBatcher(model, new VadOptions());
        return new ShardProcessor(batcher, new VadOptions()).Process(items, null, CancellationToken.None);
    }

    private string Dir()
    {
        var dir = Path.Combine(f.WorkDir, "changed-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    [Fact]
    public void A_wav_truncated_after_enqueue_records_the_missing_range_as_failed()
    {
        var dir = Dir();
        var path = Path.Combine(dir, "long.wav");
        f.Speech.WriteWav(path, 60, new Random(13));
        // Truncated to 10 s of audio (44-byte header, 16-bit mono at 16 kHz) after it was enqueued as 60 s in two items.
        using (var file = new FileStream(path, FileMode.Open)) file.SetLength(44 + 10 * 16000 * 2);

        var output = Run(new ProcessItem(0, path, 0, 30, dir, 60), new ProcessItem(0, path, 30, 60, dir, 60));

        Assert.Equal(60, output.AudioSeconds, 6);
        Assert.Equal(2, output.Failures.Count);
        var first = output.Failures.Single(x => x.StartSeconds < 30);
        Assert.Equal((10.0, 30.0), (Math.Round(first.StartSeconds, 3), first.EndSeconds));
        Assert.Contains("file is shorter than when it was enqueued (enqueued as 60 s): its audio ends at 10 s, so 20 s (10-30 s) could not be processed", first.Error);
        var second = output.Failures.Single(x => x.StartSeconds >= 30);
        Assert.Equal((30.0, 60.0), (second.StartSeconds, second.EndSeconds));
        // Seconds stay accounted for: 10 s processed, 50 s listed as failed.
        Assert.Equal(50, output.Failures.Sum(x => x.EndSeconds - x.StartSeconds), 3);
        Assert.All(output.Segments, s => Assert.True(s.EndSeconds <= 10 + 1e-9));
    }

    [Fact]
    public void A_flac_replaced_by_a_shorter_one_fails_its_missing_range_and_a_longer_one_is_a_warning()
    {
        // Siblings on the ffmpeg path: the file replaced by a shorter encoding, and one that grew.
        var dir = Dir();
        var wav = Path.Combine(dir, "speech.wav");
        f.Speech.WriteWav(wav, 20, new Random(14));
        var shorter = Path.Combine(dir, "shorter.flac");
        Ffmpeg(wav, shorter, "-t", "12");
        var longer = Path.Combine(dir, "longer.flac");
        Ffmpeg(wav, longer);

        var output = Run(new ProcessItem(0, shorter, 0, 20, dir, 20), new ProcessItem(1, longer, 0, 15, dir, 15));

        var failure = Assert.Single(output.Failures);
        Assert.Equal(0, failure.FileIndex);
        Assert.Equal(12, failure.StartSeconds, 2);
        Assert.Equal(20, failure.EndSeconds);
        var warning = Assert.Single(output.Warnings);
        Assert.Equal(1, warning.FileIndex);
        Assert.Contains("file is longer than when it was enqueued (at least 1 s more than the 15 s planned); only the enqueued audio was processed", warning.Message);
        Assert.All(output.Segments.Where(s => s.FileIndex == 1), s => Assert.True(s.EndSeconds <= 15 + 1e-9));
    }

    [Fact]
    public void A_file_replaced_by_a_fifo_or_moved_out_of_the_root_fails_that_item_and_the_shard_goes_on()
    {
        var dir = Dir();
        var good = Path.Combine(dir, "good.wav");
        f.Speech.WriteWav(good, 10, new Random(15));
        var fifo = Path.Combine(dir, "fifo.wav");
        using (var p = Process.Start("mkfifo", [fifo])) p.WaitForExit();
        var outside = Dir();
        f.Speech.WriteWav(Path.Combine(outside, "x.wav"), 10, new Random(16));
        File.CreateSymbolicLink(Path.Combine(dir, "escaped.wav"), Path.Combine(outside, "x.wav"));

        var output = Task.Run(() => Run(
            new ProcessItem(0, good, 0, 10, dir, 10),
            new ProcessItem(1, fifo, 0, 10, dir, 10),
            new ProcessItem(2, Path.Combine(dir, "escaped.wav"), 0, 10, dir, 10))).WaitAsync(TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();

        Assert.Contains(output.Segments, s => s.FileIndex == 0);
        Assert.Equal(2, output.Failures.Count);
        Assert.Contains("not a regular file: it is a FIFO (named pipe)", output.Failures.Single(x => x.FileIndex == 1).Error);
        Assert.Contains("outside the corpus", output.Failures.Single(x => x.FileIndex == 2).Error);
    }

    private static void Ffmpeg(string input, string output, params string[] extra)
    {
        var args = new List<string> { "-v", "error", "-y", "-i", input };
        args.AddRange(extra);
        args.AddRange(["-c:a", "flac", output]);
        using var p = Process.Start("ffmpeg", args)!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }
}
