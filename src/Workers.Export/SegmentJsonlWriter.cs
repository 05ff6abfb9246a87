using System.Buffers;
using System.Buffers.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

using Workers.Postgres.Export;

namespace Workers.Export;

/// <summary>
/// Writes export lines, one JSON object per segment:
/// <c>{"corpus": name, "file": path, "start": s, "end": s, "duration": s, "shard": id, "file_duration": s}</c>
/// plus <c>"audio": relative path</c> when the segment's audio was written, and one field per model
/// stage of the pipeline, named after the stage, holding its result (<see cref="ExportSegment.Results"/>). Seconds are rounded
/// to the millisecond and written in the shortest invariant form (<c>1.5</c>, <c>12.345</c>);
/// <c>duration</c> is <c>end - start</c> of the rounded values, so the three always agree.
/// Non-ASCII text is written as is (UTF-8); quotes, backslashes and control characters,
/// newlines included, are escaped, so every line is exactly one segment.
/// </summary>
/// <remarks>
/// Lines are built in a reused buffer and handed to the stream in blocks of about 64 KiB; the
/// caller calls <see cref="Flush"/> at the end. A failed write to the stream becomes an
/// <see cref="ExportOutputException"/>.
/// </remarks>
public sealed class SegmentJsonlWriter : IDisposable
{
    private const int BlockBytes = 64 * 1024;

    private static readonly JsonEncodedText CorpusKey = JsonEncodedText.Encode("corpus");
    private static readonly JsonEncodedText FileKey = JsonEncodedText.Encode("file");
    private static readonly JsonEncodedText StartKey = JsonEncodedText.Encode("start");
    private static readonly JsonEncodedText EndKey = JsonEncodedText.Encode("end");
    private static readonly JsonEncodedText DurationKey = JsonEncodedText.Encode("duration");
    private static readonly JsonEncodedText ShardKey = JsonEncodedText.Encode("shard");
    private static readonly JsonEncodedText FileDurationKey = JsonEncodedText.Encode("file_duration");
    private static readonly JsonEncodedText AudioKey = JsonEncodedText.Encode("audio");

    private readonly Stream _output;
    private readonly string _destination;
    private readonly ArrayBufferWriter<byte> _buffer = new(2 * BlockBytes);
    private readonly Utf8JsonWriter _json;
    private readonly JsonEncodedText _corpus;
    private int _lastFileIndex = -1;
    private JsonEncodedText _lastFile;

    /// <param name="output">Where lines go; not disposed by this writer.</param>
    /// <param name="corpusName">The corpus's name, written on every line.</param>
    /// <param name="destination">How to name the output in an error message ("standard output", a file name).</param>
    public SegmentJsonlWriter(Stream output, string corpusName, string destination)
    {
        _output = output;
        _destination = destination;
        var encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
        _corpus = JsonEncodedText.Encode(corpusName, encoder);
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { Encoder = encoder, Indented = false });
    }

    /// <summary>Lines written so far.</summary>
    public long Lines { get; private set; }

    /// <summary>Speech written so far, in seconds (the sum of the lines' durations).</summary>
    public double SpeechSeconds { get; private set; }

    public void Write(in ExportSegment segment, string? audio = null)
    {
        // A file's segments are consecutive: its path is escaped once, not once per segment.
        if (segment.FileIndex != _lastFileIndex)
        {
            _lastFileIndex = segment.FileIndex;
            _lastFile = JsonEncodedText.Encode(segment.File, JavaScriptEncoder.UnsafeRelaxedJsonEscaping);
        }
        long startMs = segment.StartMs, endMs = segment.EndMs;
        _json.WriteStartObject();
        _json.WriteString(CorpusKey, _corpus);
        _json.WriteString(FileKey, _lastFile);
        WriteSeconds(StartKey, startMs);
        WriteSeconds(EndKey, endMs);
        WriteSeconds(DurationKey, endMs - startMs);
        _json.WriteNumber(ShardKey, segment.ShardId);
        WriteSeconds(FileDurationKey, ExportSegment.ToMilliseconds(segment.FileDurationSeconds));
        if (audio is not null) _json.WriteString(AudioKey, audio);
        if (segment.Results is { } results) WriteStageFields(_json, results);
        _json.WriteEndObject();
        _json.Flush();
        _json.Reset();
        _buffer.GetSpan(1)[0] = (byte)'\n';
        _buffer.Advance(1);
        Lines++;
        SpeechSeconds += (endMs - startMs) / 1000.0;
        if (_buffer.WrittenCount >= BlockBytes) WriteBlock();
    }

    /// <summary>
    /// Milliseconds as seconds, exactly as <c>(ms / 1000.0)</c> would print in its shortest form
    /// (<c>12.3</c>, <c>0.045</c>, <c>7200</c>), without going through a double: formatting four
    /// doubles a line was the writer's largest cost.
    /// </summary>
    private void WriteSeconds(JsonEncodedText key, long ms)
    {
        Span<byte> text = stackalloc byte[24];
        var n = 0;
        if (ms < 0)
        {
            text[n++] = (byte)'-';
            ms = -ms;
        }
        Utf8Formatter.TryFormat(ms / 1000, text[n..], out var whole);
        n += whole;
        var frac = (int)(ms % 1000);
        if (frac != 0)
        {
            text[n++] = (byte)'.';
            text[n++] = (byte)('0' + frac / 100);
            if (frac % 100 != 0) text[n++] = (byte)('0' + frac / 10 % 10);
            if (frac % 10 != 0) text[n++] = (byte)('0' + frac % 10);
        }
        _json.WritePropertyName(key);
        _json.WriteRawValue(text[..n], skipInputValidation: true);
    }

    /// <summary>Each model stage's result as a field of the line, named after the stage (<c>"emotion": {...}</c>).</summary>
    public static void WriteStageFields(Utf8JsonWriter json, string results)
    {
        using var doc = JsonDocument.Parse(results);
        foreach (var stage in doc.RootElement.EnumerateObject()) stage.WriteTo(json);
    }

    /// <summary>Hands every buffered line to the stream and flushes it.</summary>
    public void Flush()
    {
        WriteBlock();
        try { _output.Flush(); }
        catch (IOException e) { throw OutputFailed(e); }
    }

    public void Dispose() => _json.Dispose();

    private void WriteBlock()
    {
        if (_buffer.WrittenCount == 0) return;
        try { _output.Write(_buffer.WrittenSpan); }
        catch (IOException e) { throw OutputFailed(e); }
        _buffer.ResetWrittenCount();
    }

    private ExportOutputException OutputFailed(IOException e) =>
        new($"cannot write the export to {_destination}: {e.Message}", e);
}
