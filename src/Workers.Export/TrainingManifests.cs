using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text.Encodings.Web;
using System.Text.Json;
using Workers.Audio;
using Workers.Postgres.Export;

namespace Workers.Export;

/// <summary>
/// <c>workers export --format nemo</c>: a NeMo manifest, one JSON object per line and segment, with
/// the fields NeMo's audio datasets read (NeMo 2.x, <c>nemo.collections.asr.data.audio_to_text</c> /
/// <c>ASRAudioText</c>): <c>audio_filepath</c> (the source file, absolute), <c>offset</c> (start, s)
/// and <c>duration</c> (s), plus one field per model stage, named after it, holding its result.
/// There is no <c>text</c>: VAD segments have no transcript (add it downstream, or a stage's output).
/// </summary>
public sealed class NemoManifestWriter(Stream output, string rootDir) : IDisposable
{
    private readonly Utf8JsonWriter _json = new(output, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    public long Lines { get; private set; }

    public void Write(in ExportSegment s)
    {
        _json.WriteStartObject();
        _json.WriteString("audio_filepath", TrainingManifests.FullPath(rootDir, s.File));
        _json.WriteNumber("offset", s.StartMs / 1000.0);
        _json.WriteNumber("duration", (s.EndMs - s.StartMs) / 1000.0);
        if (s.Results is { } r) SegmentJsonlWriter.WriteStageFields(_json, r);
        _json.WriteEndObject();
        _json.Flush();
        _json.Reset();
        output.WriteByte((byte)'\n');
        Lines++;
    }

    public void Dispose() => _json.Dispose();
}

/// <summary>
/// <c>workers export --format lhotse --output DIR</c>: Lhotse manifests as its
/// <c>RecordingSet.to_file</c> / <c>SupervisionSet.to_file</c> write them (lhotse 1.x,
/// <c>lhotse/audio/recording.py</c>, <c>lhotse/supervision.py</c>; JSONL, gzip):
/// <c>DIR/recordings.jsonl.gz</c>, one <c>Recording</c> per file with segments
/// (<c>id</c> = the file's path in the corpus, <c>sources</c> = one <c>{"type": "file", "channels": [0..n-1],
/// "source": absolute path}</c>, the file's own <c>sampling_rate</c>, <c>num_samples</c>, <c>duration</c>
/// and <c>channel_ids</c>, read from the WAV, FLAC or MP3 header or ffprobe), and <c>DIR/supervisions.jsonl.gz</c>, one
/// <c>SupervisionSegment</c> per speech segment (<c>id</c>, <c>recording_id</c>, <c>start</c>,
/// <c>duration</c>, <c>channel</c> (0, or every channel of a multi-channel file: the VAD heard their mix)
/// and <c>custom</c> = <c>{"shard": id, stage: result, ...}</c>). Both are written under temporary names
/// and renamed when complete.
/// </summary>
public sealed class LhotseManifestWriter : IDisposable
{
    private readonly string _root;
    private readonly string _ffprobe;
    private readonly TextWriter _warnings;
    private readonly AtomicOutputFile _recordingsFile, _supervisionsFile;
    private readonly GZipStream _recordingsZip, _supervisionsZip;
    private readonly Utf8JsonWriter _recordings, _supervisions;
    private int _lastFile = -1;
    private RecordingInfo? _current;

    public LhotseManifestWriter(string folder, string rootDir, TextWriter warnings, string ffprobe = "ffprobe")
    {
        if (!Directory.Exists(folder)) throw new ArgumentException($"--output '{folder}' must be an existing folder for --format lhotse (recordings.jsonl.gz and supervisions.jsonl.gz go in it).");
        _root = rootDir;
        _ffprobe = ffprobe;
        _warnings = warnings;
        _recordingsFile = new AtomicOutputFile(Path.Combine(folder, "recordings.jsonl.gz"));
        _supervisionsFile = new AtomicOutputFile(Path.Combine(folder, "supervisions.jsonl.gz"));
        _recordingsZip = new GZipStream(_recordingsFile.Stream, CompressionLevel.Optimal, leaveOpen: true);
        _supervisionsZip = new GZipStream(_supervisionsFile.Stream, CompressionLevel.Optimal, leaveOpen: true);
        var options = new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        _recordings = new Utf8JsonWriter(_recordingsZip, options);
        _supervisions = new Utf8JsonWriter(_supervisionsZip, options);
    }

    public long Recordings { get; private set; }

    public long Supervisions { get; private set; }

    /// <summary>Files whose audio could not be read for its sampling rate now (moved or deleted since processing): left out, with a warning each.</summary>
    public long FilesSkipped { get; private set; }

    public string Folder => Path.GetDirectoryName(_recordingsFile.Path)!;

    public void Write(in ExportSegment s)
    {
        if (s.FileIndex != _lastFile)
        {
            _lastFile = s.FileIndex;
            var full = TrainingManifests.FullPath(_root, s.File);
            _current = RecordingInfo.Read(full, _ffprobe, out var error);
            if (_current is null)
            {
                FilesSkipped++;
                _warnings.WriteLine($"warning: {s.File}: left out of the Lhotse manifests: {error}");
                return;
            }
            WriteRecording(s.File, full, _current);
        }
        if (_current is null) return;
        var w = _supervisions;
        w.WriteStartObject();
        w.WriteString("id", $"{s.File}-{s.StartMs:D8}-{s.EndMs:D8}");
        w.WriteString("recording_id", s.File);
        w.WriteNumber("start", s.StartMs / 1000.0);
        w.WriteNumber("duration", (s.EndMs - s.StartMs) / 1000.0);
        if (_current.Channels == 1) w.WriteNumber("channel", 0);
        else
        {
            w.WriteStartArray("channel");
            for (var c = 0; c < _current.Channels; c++) w.WriteNumberValue(c);
            w.WriteEndArray();
        }
        w.WriteStartObject("custom");
        w.WriteNumber("shard", s.ShardId);
        if (s.Results is { } r) SegmentJsonlWriter.WriteStageFields(w, r);
        w.WriteEndObject();
        w.WriteEndObject();
        EndLine(w, _supervisionsZip);
        Supervisions++;
    }

    private void WriteRecording(string id, string full, RecordingInfo info)
    {
        var w = _recordings;
        w.WriteStartObject();
        w.WriteString("id", id);
        w.WriteStartArray("sources");
        w.WriteStartObject();
        w.WriteString("type", "file");
        w.WriteStartArray("channels");
        for (var c = 0; c < info.Channels; c++) w.WriteNumberValue(c);
        w.WriteEndArray();
        w.WriteString("source", full);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteNumber("sampling_rate", info.SampleRate);
        w.WriteNumber("num_samples", info.Samples);
        w.WriteNumber("duration", info.Samples / (double)info.SampleRate);
        w.WriteStartArray("channel_ids");
        for (var c = 0; c < info.Channels; c++) w.WriteNumberValue(c);
        w.WriteEndArray();
        w.WriteEndObject();
        EndLine(w, _recordingsZip);
        Recordings++;
    }

    private static void EndLine(Utf8JsonWriter w, Stream s)
    {
        w.Flush();
        w.Reset();
        s.WriteByte((byte)'\n');
    }

    /// <summary>Finishes both gzip streams and renames both files into place.</summary>
    public void Commit()
    {
        _recordings.Dispose(); // flushes into the gzip streams, which are finished next
        _supervisions.Dispose();
        _recordingsZip.Dispose();
        _supervisionsZip.Dispose();
        _recordingsFile.Commit();
        _supervisionsFile.Commit();
    }

    public void Dispose()
    {
        // Not committed: the temporary files are removed; the writers' remaining bytes go nowhere.
        _recordingsZip.Dispose();
        _supervisionsZip.Dispose();
        _recordingsFile.Dispose();
        _supervisionsFile.Dispose();
    }
}

/// <summary>A source file's own format: what a Lhotse <c>Recording</c> states.</summary>
public sealed record RecordingInfo(int SampleRate, int Channels, long Samples)
{
    /// <summary>From the WAV, FLAC or MP3 header (<see cref="HeaderDuration"/>), or ffprobe (<c>num_samples</c> = duration x rate,
    /// rounded half up as Lhotse's <c>compute_num_samples</c>).</summary>
    public static RecordingInfo? Read(string path, string ffprobe, out string? error)
    {
        error = null;
        try
        {
            using (var stream = File.OpenRead(path))
            {
                var magic = new byte[12];
                var got = stream.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
                if (WavHeader.HasWaveMagic(magic.AsSpan(0, got)))
                {
                    stream.Position = 0;
                    var h = WavHeader.Read(stream, path);
                    if (h.FrameCount is long frames) return new RecordingInfo(h.SampleRate, h.Channels, frames);
                }
                // FLAC and MP3 headers state what ffprobe reads, without its start-up (40-90 ms a file). An Opus header's
                // duration leaves out the pre-skip that ffprobe counts, and Lhotse with it: Opus still asks ffprobe.
                else if (HeaderDuration.TryRead(stream) is { Format: not HeaderDuration.Codec.Opus } stated)
                    return new RecordingInfo(stated.SampleRate, stated.Channels, stated.Samples);
            }
            var psi = new ProcessStartInfo(ffprobe)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                ArgumentList = { "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=sample_rate,channels:format=duration", "-of", "default=noprint_wrappers=1", path },
            };
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEnd();
            var stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            var values = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(l => l.Split('=', 2)).Where(kv => kv.Length == 2).GroupBy(kv => kv[0]).ToDictionary(g => g.Key, g => g.First()[1]);
            if (p.ExitCode == 0 && values.TryGetValue("sample_rate", out var sr) && int.TryParse(sr, CultureInfo.InvariantCulture, out var rate)
                && values.TryGetValue("channels", out var ch) && int.TryParse(ch, CultureInfo.InvariantCulture, out var channels)
                && values.TryGetValue("duration", out var d) && double.TryParse(d, CultureInfo.InvariantCulture, out var seconds))
                return new RecordingInfo(rate, channels, (long)Math.Round(seconds * rate, MidpointRounding.AwayFromZero));
            error = $"ffprobe could not read its format ({(stderr.Trim() is { Length: > 0 } e ? e : "no audio stream")})";
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception or AudioFormatException)
        {
            error = e.Message;
            return null;
        }
    }
}

internal static class TrainingManifests
{
    /// <summary>The file's absolute path: paths of a folder corpus are relative to its root; manifest paths may be absolute.</summary>
    public static string FullPath(string rootDir, string file) => Path.IsPathRooted(file) ? file : Path.GetFullPath(Path.Combine(rootDir, file));
}
