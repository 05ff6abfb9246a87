using System.Diagnostics;
using Workers.Audio.Tests.TestFiles;

namespace Workers.Audio.Tests;

/// <summary>
/// The decoder's exit is typed (issue 14): the exit code and the signal are properties of
/// <see cref="DecoderExitException"/>, read from a real ffmpeg, so nothing above has to parse
/// "exited with code N" out of a message.
/// </summary>
public sealed class DecoderExitExceptionTests : IClassFixture<EncodedTones>, IDisposable
{
    private readonly EncodedTones _tones;
    private readonly TempDirectory _dir = new();

    public DecoderExitExceptionTests(EncodedTones tones)
    {
        _tones = tones;
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_real_ffmpeg_failing_on_a_corrupt_file_exits_with_code_1_and_no_signal()
    {
        string path = _dir.File("corrupt.flac");
        File.WriteAllBytes(path, Enumerable.Range(0, 5000).Select(i => (byte)(i * 97 + i / 13)).ToArray());

        using var source = AudioDecoder.Open(path);
        var e = Assert.Throws<DecoderExitException>(() => Signals.ReadAll(source));

        Assert.Equal("ffmpeg", e.Tool);
        Assert.Equal(1, e.ExitCode);
        Assert.Null(e.Signal);
        Assert.Equal(path, e.Path);
        Assert.False(string.IsNullOrWhiteSpace(e.ToolOutput));
    }

    [Theory]
    [InlineData(9)]  // SIGKILL: the OOM killer, an operator
    [InlineData(11)] // SIGSEGV: a decoder crash
    public void A_real_ffmpeg_killed_by_a_signal_reports_the_signal(int signal)
    {
        // 5 s of FLAC decode to 320 KB of floats, more than a pipe holds: ffmpeg is still running
        // (blocked writing) after the first read, so the signal reaches a live decoder.
        using var source = AudioDecoder.Open(_tones.Flac);
        var buffer = new float[1024];
        Assert.True(source.Read(buffer) > 0);
        int pid = Assert.IsType<FfmpegAudioSource>(source).ProcessId;
        Kill(pid, signal);

        var e = Assert.Throws<DecoderExitException>(() => Signals.ReadAll(source));

        Assert.Equal(signal, e.Signal);
        Assert.Equal(128 + signal, e.ExitCode);
        Assert.Equal(_tones.Flac, e.Path);
    }

    [Fact]
    public void Only_exit_codes_of_a_signal_carry_one()
    {
        Assert.Null(new DecoderExitException("a.mp3", "ffmpeg", 1, "").Signal);
        Assert.Null(new DecoderExitException("a.mp3", "ffmpeg", 128, "").Signal);
        Assert.Equal(15, new DecoderExitException("a.mp3", "ffmpeg", 143, "").Signal);
        Assert.Null(new DecoderExitException("a.mp3", "ffmpeg", 255, "").Signal); // ffmpeg's own exit after SIGTERM
        Assert.Equal("a.mp3: ffmpeg exited with code 1: (no message)", new DecoderExitException("a.mp3", "ffmpeg", 1, "").Message);
    }

    private static void Kill(int pid, int signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]))!;
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }
}
