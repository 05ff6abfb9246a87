using System.Diagnostics;
using System.Globalization;
using Workers.Audio.Tests.TestFiles;
using Workers.Testing;

namespace Workers.Audio.Tests;

/// <summary>
/// Durations read from FLAC, Ogg Opus and MP3 headers in process, against what ffprobe reports for the same
/// files: the enqueue of a folder of clips no longer starts an ffprobe per file for these, and every file whose
/// header does not state its duration exactly still goes to ffprobe.
/// </summary>
public sealed class HeaderDurationTests : IClassFixture<EncodedTones>, IDisposable
{
    private readonly EncodedTones _tones;
    private readonly TempDirectory _dir = new();

    public HeaderDurationTests(EncodedTones tones) => _tones = tones;

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string, string[], bool> Stated => new()
    {
        { "mono.flac", ["-c:a", "flac"], false },
        { "stereo16k.flac", ["-ac", "2", "-ar", "16000", "-c:a", "flac"], false },
        { "tagged.flac", ["-c:a", "flac"], true },
        { "mono.opus", ["-c:a", "libopus", "-b:a", "24k"], false },
        { "stereo.opus", ["-ac", "2", "-c:a", "libopus", "-b:a", "64k"], false },
        { "cbr.mp3", ["-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"], false },
        { "vbr.mp3", ["-c:a", "libmp3lame", "-q:a", "4"], false },
        { "mpeg2.mp3", ["-ar", "16000", "-c:a", "libmp3lame", "-b:a", "32k"], false },
        { "mpeg25.mp3", ["-ar", "8000", "-c:a", "libmp3lame"], false },
        { "tagged.mp3", ["-ac", "2", "-c:a", "libmp3lame", "-b:a", "96k", "-id3v2_version", "3", "-metadata", "title=a talk"], false },
    };

    [Theory]
    [MemberData(nameof(Stated))]
    public async Task A_stated_duration_is_read_from_the_header_as_ffprobe_reads_it(string name, string[] encode, bool id3)
    {
        string path = Encode(name, encode);
        if (id3) PrependId3(path);
        var (seconds, rate, channels) = Ffprobe.Format(path);

        using (var stream = File.OpenRead(path))
        {
            var stated = HeaderDuration.TryRead(stream);
            Assert.NotNull(stated);
            Assert.Equal(rate, stated.Value.SampleRate);
            Assert.Equal(channels, stated.Value.Channels);
            // ffprobe counts Opus's pre-skip (6.5 ms), which the decoder drops; everything else it reads alike.
            Assert.Equal(seconds, stated.Value.Seconds, name.EndsWith(".opus", StringComparison.Ordinal) ? 0.0066 : 1e-6);
        }

        // No ffprobe at all: only the header can have answered.
        var probed = await new AudioProber("/nonexistent/ffprobe").ProbeAsync(path);
        Assert.Null(probed.Error);
        Assert.Equal(seconds, probed.DurationSeconds!.Value, 0.0066);
    }

    [Fact]
    public async Task The_opus_duration_is_what_decodes_also_for_a_file_cut_short()
    {
        string path = Encode("long.opus", ["-c:a", "libopus", "-b:a", "24k"]);
        string cut = _dir.File("cut.opus");
        File.WriteAllBytes(cut, File.ReadAllBytes(path)[..(int)(new FileInfo(path).Length * 2 / 3)]);

        foreach (var file in new[] { path, cut })
        {
            using var stream = File.OpenRead(file);
            var stated = HeaderDuration.TryRead(stream);
            Assert.NotNull(stated);
            Assert.Equal(Decoded(file), stated.Value.Seconds, 1e-9);
        }
        Assert.True(await new AudioProber("/nonexistent/ffprobe").ProbeAsync(cut) is { Error: null, DurationSeconds: > 1 and < 4.9 });
    }

    public static TheoryData<string, string[]> NotStated => new()
    {
        { "piped.flac", ["-c:a", "flac", "-f", "flac", "pipe:1"] }, // no sample count in STREAMINFO
        { "noxing.mp3", ["-c:a", "libmp3lame", "-b:a", "64k", "-write_xing", "0"] },
        { "vorbis.ogg", ["-c:a", "libvorbis"] },
        { "offset.opus", ["-c:a", "libopus", "-output_ts_offset", "3"] }, // its granules start at 3 s
        { "twice.opus", ["-filter_complex", "asplit[a][b]", "-map", "[a]", "-map", "[b]", "-c:a", "libopus"] }, // two streams
        { "aac.m4a", ["-c:a", "aac"] },
    };

    [Theory]
    [MemberData(nameof(NotStated))]
    public async Task A_header_that_does_not_state_it_exactly_leaves_the_file_to_ffprobe(string name, string[] encode)
    {
        string path = Encode(name, encode);

        using (var stream = File.OpenRead(path))
            Assert.Null(HeaderDuration.TryRead(stream));
        Assert.StartsWith("ffprobe not found", (await new AudioProber("/nonexistent/ffprobe").ProbeAsync(path)).Error);
        var probed = await new AudioProber().ProbeAsync(path);
        if (name == "piped.flac") Assert.Equal("ffprobe: duration unknown (the container does not record it)", probed.Error);
        else Assert.True(probed.DurationSeconds > 4.9, probed.Error);
    }

    [Fact]
    public void Garbage_and_cut_headers_are_not_read()
    {
        byte[] flac = File.ReadAllBytes(_tones.Flac);
        byte[] mp3 = File.ReadAllBytes(_tones.Mp3);
        foreach (var bytes in new[] { flac[..20], mp3[..30], "OggS"u8.ToArray(), "ID3\x03\0\0\0\0\x7f\x7f"u8.ToArray(), [0xFF, 0xFB, 0x90, 0x64], [], "fLaC"u8.ToArray() })
            Assert.Null(HeaderDuration.TryRead(new MemoryStream(bytes)));
        // An "OggS" whose checksum does not hold is not a page.
        byte[] opus = File.ReadAllBytes(Encode("check.opus", ["-c:a", "libopus"]));
        opus[30] ^= 1;
        Assert.Null(HeaderDuration.TryRead(new MemoryStream(opus)));
    }

    [Fact]
    public void Damaged_headers_give_an_answer_or_none_never_an_exception()
    {
        // Enqueue reads every file of a folder: a header reader that threw on odd bytes would fail the scan, not the file.
        var random = new Random(20261207);
        var files = new[] { File.ReadAllBytes(_tones.Flac), File.ReadAllBytes(_tones.Mp3), File.ReadAllBytes(Encode("fuzz.opus", ["-c:a", "libopus"])) };
        foreach (var original in files)
            for (int run = 0; run < 500; run++)
            {
                var bytes = (byte[])original.Clone();
                for (int k = random.Next(1, 8); k > 0; k--) bytes[random.Next(Math.Min(bytes.Length, run % 2 == 0 ? 200 : bytes.Length))] = (byte)random.Next(256);
                var cut = random.Next(3) == 0 ? bytes[..random.Next(bytes.Length)] : bytes;
                if (HeaderDuration.TryRead(new MemoryStream(cut)) is { } stated)
                    Assert.True(stated.Seconds > 0 && stated.SampleRate > 0 && stated.Channels > 0, stated.ToString());
            }
    }

    private string Encode(string name, string[] encode)
    {
        string path = _dir.File(name);
        if (encode[^1] == "pipe:1")
        {
            // A FLAC written to a pipe cannot seek back to fill in its sample count.
            using var p = Process.Start(new ProcessStartInfo("sh", ["-c", $"ffmpeg -nostdin -v error -i '{_tones.Wav44k}' {string.Join(' ', encode)} > '{path}'"]))!;
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode);
        }
        else Ffmpeg.Run(["-i", _tones.Wav44k, .. encode, path]);
        return path;
    }

    /// <summary>Puts a 100-byte ID3v2.3 tag (size syncsafe) before the file's bytes, as taggers do to FLAC files.</summary>
    private static void PrependId3(string path)
    {
        byte[] tag = new byte[10 + 100];
        "ID3"u8.CopyTo(tag);
        tag[3] = 3;
        tag[9] = 100;
        File.WriteAllBytes(path, [.. tag, .. File.ReadAllBytes(path)]);
    }

    /// <summary>Seconds of audio ffmpeg decodes from the file at its own rate (48 kHz for Opus).</summary>
    private static double Decoded(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("sh", ["-c", $"ffmpeg -nostdin -v error -i '{path}' -ac 1 -ar 48000 -f f32le - | wc -c"]) { RedirectStandardOutput = true })!;
        long bytes = long.Parse(p.StandardOutput.ReadToEnd().Trim(), CultureInfo.InvariantCulture);
        p.WaitForExit();
        return bytes / 4 / 48000.0;
    }
}
