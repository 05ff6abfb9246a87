using System.Text;
using System.Text.Json;
using Workers.Core.Options;

namespace Workers.Core.Corpora;

/// <summary>
/// Reads a JSONL manifest: one <c>{"path": "...", "duration": seconds}</c> object a line (other
/// keys are ignored, blank lines skipped). Durations are trusted; files are only opened when
/// processed. Relative paths are relative to the manifest's folder. Every malformed line is
/// reported by number (up to <see cref="MaxReportedErrors"/>) and nothing is enqueued.
/// <para>
/// Paths are normalised so one file is one file: <c>x.wav</c>, <c>./x.wav</c>, <c>sub/../x.wav</c>
/// and the absolute path of <c>x.wav</c> are the same entry (a second one is a malformed line naming
/// the first). A path inside the manifest's folder is stored relative to it, with <c>/</c>; one
/// outside is stored absolute. <c>.</c> and <c>..</c> are collapsed lexically, without following
/// symlinks (a manifest is read without touching the files it lists).
/// </para>
/// </summary>
public static class ManifestReader
{
    public const int MaxReportedErrors = 20;

    /// <param name="limits">Corpus:Limits: a duration over <see cref="CorpusLimits.MaxFileSeconds"/> is a
    /// malformed line (almost certainly milliseconds or samples written as seconds). Null: the defaults.</param>
    public static CorpusListing Read(string manifestPath, CorpusLimits? limits = null)
    {
        var maxSeconds = (limits ?? CorpusLimits.Default).MaxFileSeconds;
        var full = Path.GetFullPath(manifestPath);
        if (!File.Exists(full))
            throw new CorpusSourceException($"Manifest '{manifestPath}' does not exist.");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(full); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CorpusSourceException($"Manifest '{manifestPath}' cannot be read: {e.Message}");
        }

        var files = new List<SourceFile>(Math.Max(16, bytes.Length / 64));
        var errors = new List<string>();
        var seen = new Dictionary<string, (int Line, string Written)>(StringComparer.Ordinal);
        var folder = Path.GetDirectoryName(full)!;
        var span = bytes.AsSpan();
        if (span.StartsWith("\uFEFF"u8)) span = span[3..];
        var lineNo = 0;
        while (!span.IsEmpty)
        {
            lineNo++;
            var nl = span.IndexOf((byte)'\n');
            var line = nl < 0 ? span : span[..nl];
            span = nl < 0 ? default : span[(nl + 1)..];
            if (line.Length > 0 && line[^1] == '\r') line = line[..^1];
            if (line.Trim(" \t"u8).IsEmpty) continue;

            var error = ParseLine(line, maxSeconds, out var written, out var duration);
            string? path = null;
            if (error is null) error = Normalise(written!, folder, out path);
            if (error is null)
            {
                if (seen.TryGetValue(path!, out var first))
                    error = first.Written == written
                        ? $"path '{written}' already listed on line {first.Line}"
                        : $"path '{written}' is the same file as '{first.Written}' on line {first.Line}; list each file once";
                else
                {
                    seen.Add(path!, (lineNo, written!));
                    files.Add(new SourceFile(path!, duration));
                }
            }
            if (error is not null)
            {
                errors.Add($"line {lineNo}: {error}");
                if (errors.Count >= MaxReportedErrors) { errors.Add("... (stopped after " + MaxReportedErrors + " errors)"); break; }
            }
        }
        if (errors.Count > 0)
            throw new CorpusSourceException(
                $"Manifest '{manifestPath}' has malformed lines; nothing was enqueued. Each line must be a JSON object like " +
                "{\"path\": \"audio/a.flac\", \"duration\": 12.5} (duration in seconds, > 0)." + Environment.NewLine +
                string.Join(Environment.NewLine, errors.Select(e => "  " + e)));
        if (files.Count == 0)
            throw new CorpusSourceException($"Manifest '{manifestPath}' lists no files.");
        // The root is recorded with its symlinks resolved: workers check that what they open still lies under it.
        return new CorpusListing("manifest", full, FolderScanner.RealPath(folder), files, []);
    }

    /// <summary>The one spelling of <paramref name="written"/>: relative to <paramref name="folder"/> with '/' when inside it, else absolute.</summary>
    private static string? Normalise(string written, string folder, out string? path)
    {
        path = null;
        string absolute;
        try { absolute = Path.TrimEndingDirectorySeparator(Path.GetFullPath(written, folder)); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return $"\"path\" '{written}' is not a valid path: {e.Message}";
        }
        if (absolute == folder) return $"\"path\" '{written}' is the manifest's folder, not an audio file";
        var prefix = folder.EndsWith('/') ? folder : folder + "/";
        path = absolute.StartsWith(prefix, StringComparison.Ordinal) ? absolute[prefix.Length..] : absolute;
        return null;
    }

    private static string? ParseLine(ReadOnlySpan<byte> line, double maxSeconds, out string? path, out double duration)
    {
        path = null;
        duration = 0;
        var hasDuration = false;
        try
        {
            var reader = new Utf8JsonReader(line, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return "not a JSON object";
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("path"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String) return "\"path\" must be a string";
                    path = reader.GetString();
                }
                else if (reader.ValueTextEquals("duration"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.Number || !reader.TryGetDouble(out duration))
                        return "\"duration\" must be a number of seconds";
                    hasDuration = true;
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject) return "not a JSON object";
            if (reader.Read()) return "extra text after the JSON object";
        }
        catch (JsonException e)
        {
            return "invalid JSON: " + e.Message.Split(" LineNumber", 2)[0];
        }
        if (string.IsNullOrWhiteSpace(path)) return "missing \"path\"";
        if (path.Contains('\0')) return "\"path\" contains a NUL character";
        if (!hasDuration) return "missing \"duration\" (seconds)";
        if (!double.IsFinite(duration) || duration <= 0) return $"\"duration\" must be a positive number of seconds (got {duration})";
        if (duration > maxSeconds)
            return $"\"duration\" {duration} s is over Corpus:Limits:MaxFileSeconds ({maxSeconds:0} s, {maxSeconds / 86400:0.#} days): is it in milliseconds or samples?";
        return null;
    }
}
