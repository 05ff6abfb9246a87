using System.Text;
using Workers.Export;
using Workers.Postgres.Export;

namespace Workers.Export.Tests;

public sealed class SegmentJsonlWriterTests
{
    private static string Write(params (ExportSegment Segment, string? Audio)[] lines)
    {
        var ms = new MemoryStream();
        using var w = new SegmentJsonlWriter(ms, "c", "memory");
        foreach (var (s, a) in lines) w.Write(s, a);
        w.Flush();
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    [Fact]
    public void Seconds_are_rounded_to_the_millisecond_and_duration_is_end_minus_start_of_the_rounded_values()
    {
        var text = Write(
            (new ExportSegment(0, "a.wav", 7200.00049, 0.0004, 0.0016, 9), null),
            (new ExportSegment(0, "a.wav", 7200.00049, 12.3456, 99.9996, 9), "a/12346-100000.wav"),
            (new ExportSegment(1, "b.wav", 0.1, 0.1, 0.3, 10), null));
        Assert.Equal(
            "{\"corpus\":\"c\",\"file\":\"a.wav\",\"start\":0,\"end\":0.002,\"duration\":0.002,\"shard\":9,\"file_duration\":7200}\n" +
            "{\"corpus\":\"c\",\"file\":\"a.wav\",\"start\":12.346,\"end\":100,\"duration\":87.654,\"shard\":9,\"file_duration\":7200,\"audio\":\"a/12346-100000.wav\"}\n" +
            "{\"corpus\":\"c\",\"file\":\"b.wav\",\"start\":0.1,\"end\":0.3,\"duration\":0.2,\"shard\":10,\"file_duration\":0.1}\n",
            text);
    }

    [Fact]
    public void Counts_lines_and_speech_and_writes_large_exports_in_blocks()
    {
        var ms = new MemoryStream();
        using var w = new SegmentJsonlWriter(ms, "c", "memory");
        for (var i = 0; i < 10_000; i++) w.Write(new ExportSegment(i / 100, $"f{i / 100}.wav", 1000, i % 100 * 10, i % 100 * 10 + 1.5, 1));
        Assert.True(ms.Length > 0, "full blocks are handed to the stream before Flush");
        w.Flush();
        Assert.Equal(10_000, w.Lines);
        Assert.Equal(15_000, w.SpeechSeconds, 6);
        Assert.Equal(10_000, Encoding.UTF8.GetString(ms.ToArray()).Count(c => c == '\n'));
    }

    [Fact]
    public void A_failing_output_is_an_export_output_error_naming_the_destination()
    {
        using var w = new SegmentJsonlWriter(new FailingStream(), "c", "standard output");
        w.Write(new ExportSegment(0, "a.wav", 10, 1, 2, 1));
        var e = Assert.Throws<ExportOutputException>(w.Flush);
        Assert.Contains("cannot write the export to standard output: Broken pipe", e.Message);
    }

    private sealed class FailingStream : MemoryStream
    {
        public override void Write(ReadOnlySpan<byte> buffer) => throw new IOException("Broken pipe");
        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("Broken pipe");
    }
}
