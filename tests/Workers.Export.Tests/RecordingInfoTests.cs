using System.Diagnostics;
using Workers.Testing;

namespace Workers.Export.Tests;

/// <summary>A Lhotse recording's format and sample count: FLAC and MP3 from their headers, as ffprobe reads them; Opus from ffprobe.</summary>
public sealed class RecordingInfoTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("recording-info-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Theory]
    [InlineData("a.flac", "-ac 2 -c:a flac")]
    [InlineData("a.mp3", "-c:a libmp3lame -b:a 64k")]
    [InlineData("b.mp3", "-ar 16000 -c:a libmp3lame -b:a 32k")]
    public void Flac_and_mp3_are_read_from_their_headers_with_the_numbers_ffprobe_gives(string name, string encode)
    {
        string path = Encode(name, encode);

        var fromHeader = RecordingInfo.Read(path, "/nonexistent/ffprobe", out var error);
        Assert.Null(error);
        Assert.Equal(FromFfprobe(path), fromHeader);
    }

    [Fact]
    public void Opus_asks_ffprobe_whose_duration_lhotse_uses()
    {
        string path = Encode("a.opus", "-c:a libopus");

        Assert.Null(RecordingInfo.Read(path, "/nonexistent/ffprobe", out var error));
        Assert.NotNull(error);
        var info = RecordingInfo.Read(path, "ffprobe", out _);
        Assert.Equal(new RecordingInfo(48000, 1, (long)Math.Round(3.0065 * 48000)), info); // 3 s and Opus's 6.5 ms pre-skip
    }

    private static RecordingInfo FromFfprobe(string path)
    {
        // What the export wrote before it read headers: ffprobe's duration x rate, rounded half up.
        var (seconds, rate, channels) = Ffprobe.Format(path);
        return new RecordingInfo(rate, channels, (long)Math.Round(seconds * rate, MidpointRounding.AwayFromZero));
    }

    private string Encode(string name, string encode)
    {
        string path = Path.Combine(_dir, name);
        using var p = Process.Start(new ProcessStartInfo("sh", ["-c", $"ffmpeg -nostdin -v error -y -f lavfi -i 'sine=frequency=300:sample_rate=44100:duration=3' {encode} '{path}'"]))!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return path;
    }
}
