using Workers.Audio;
using Workers.Audio.Synthesis;
using Workers.Pipeline.Processing;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Processing;

/// <summary>An ffmpeg that crashes once is retried; a bad file is not (issue: fleet, failure handling).</summary>
[Collection(SileroCollection.Name)]
public sealed class TransientDecodeTests(SileroFixture f)
{
    private ShardOutput Run(ProcessItem item, AudioDecoderOptions decoder, out int retries)
    {
        using var model = new SileroVadModel(f.Session, 8);
        using var batcher = new VadBatcher(model, new VadOptions());
        var processor = new ShardProcessor(batcher, new VadOptions(), decoder);
        var output = processor.Process([item], null, CancellationToken.None);
        retries = processor.TransientRetries;
        return output;
    }

    [Fact]
    public void An_ffmpeg_killed_once_is_retried_and_the_item_gives_the_segments_of_a_clean_decode()
    {
        var dir = Path.Combine(f.WorkDir, "flaky-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(dir);
        var wav = Path.Combine(dir, "speech.wav");
        f.Speech.WriteWav(wav, 30, new Random(21));
        var flac = Path.Combine(dir, "speech.flac");
        SpeechCorpusGenerator.Encode(wav, flac, 44100);
        var marker = Path.Combine(dir, "crashed-once");
        var script = Path.Combine(dir, "ffmpeg");
        File.WriteAllText(script, $"#!/bin/sh\nif [ ! -e '{marker}' ]; then touch '{marker}'; kill -9 $$; fi\nexec ffmpeg \"$@\"\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var clean = Run(new ProcessItem(0, flac, 0, 30), AudioDecoderOptions.Default, out _);
        var flaky = Run(new ProcessItem(0, flac, 0, 30), new AudioDecoderOptions { FfmpegPath = script }, out var retries);

        Assert.True(File.Exists(marker));
        Assert.Equal(1, retries);
        Assert.Empty(flaky.Failures);
        Assert.NotEmpty(clean.Segments);
        Assert.Equal(clean.Segments, flaky.Segments);
        Assert.Equal(30, flaky.AudioSeconds, 6);
    }

    [Fact]
    public void A_corrupt_file_is_not_retried()
    {
        var bad = Path.Combine(f.WorkDir, "corrupt-" + Guid.NewGuid().ToString("N")[..6] + ".mp3");
        File.WriteAllText(bad, "not audio");
        var output = Run(new ProcessItem(0, bad, 0, 10), AudioDecoderOptions.Default, out var retries);
        Assert.Equal(0, retries);
        Assert.Single(output.Failures);
        Assert.False(ShardProcessor.IsTransientDecodeError(new FileNotFoundException("gone")));
        Assert.True(ShardProcessor.IsTransientDecodeError(new AudioReadException(new IOException("EIO"))));
    }

    [Fact]
    public void The_decoders_exit_is_read_from_its_properties_not_its_message()
    {
        // Issue 14: a signal is transient, a rejection is not, whatever the text says.
        Assert.True(ShardProcessor.IsTransientDecodeError(new AudioReadException(new DecoderExitException("a.flac", "ffmpeg", 128 + 9, "Killed"))));
        Assert.True(ShardProcessor.IsTransientDecodeError(new DecoderExitException("a.flac", "ffmpeg", 128 + 11, "")));
        Assert.True(ShardProcessor.IsTransientDecodeError(new DecoderExitException("a.flac", "ffmpeg", 255, "Exiting normally, received signal 15.")));
        Assert.False(ShardProcessor.IsTransientDecodeError(new DecoderExitException("a.flac", "ffmpeg", 1, "ffmpeg exited with code 137")));
        // A format error that merely quotes an exit code in its text is the file's fault.
        Assert.False(ShardProcessor.IsTransientDecodeError(new AudioFormatException("a.flac", "ffmpeg exited with code 137: (no message)")));
    }
}
