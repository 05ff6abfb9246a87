using System.Text;

namespace Workers.Export;

/// <summary>
/// Where each corpus file's segment audio goes under <c>--audio-dir</c>: a folder named after
/// the file's path without its extension (<c>spk1/utt 7.flac</c> becomes <c>spk1/utt 7/</c>), so
/// the export mirrors the corpus's folders. Paths are made safe first: <c>..</c> becomes
/// <c>__</c>, a leading <c>/</c> (absolute manifest paths) and empty or <c>.</c> components are
/// dropped, control characters and backslashes become <c>_</c>, and a component is cut to 240
/// UTF-8 bytes; nothing can name a place outside the audio folder. Two files that would share a
/// folder (<c>a.wav</c> and <c>a.flac</c>) get distinct ones: the later keeps its extension
/// (<c>a_flac/</c>), or failing that gets a counter (<c>a~2/</c>).
/// </summary>
public sealed class SegmentAudioPaths
{
    /// <summary>Most file systems allow 255 bytes per name; the rest is headroom for suffixes.</summary>
    private const int MaxComponentBytes = 240;

    private readonly HashSet<string> _taken = new(StringComparer.Ordinal);

    /// <summary>The folder, relative and '/'-separated, for <paramref name="file"/>; each file must be asked for once.</summary>
    public string FolderFor(string file)
    {
        var folder = Sanitize(file, out var extension);
        if (_taken.Add(folder)) return folder;
        if (extension.Length > 0 && _taken.Add(folder + "_" + extension)) return folder + "_" + extension;
        for (var k = 2; ; k++)
            if (_taken.Add($"{folder}~{k}")) return $"{folder}~{k}";
    }

    /// <summary>The safe folder for <paramref name="file"/>, before de-duplication; <paramref name="extension"/> is its extension without the dot.</summary>
    public static string Sanitize(string file, out string extension)
    {
        var parts = new List<string>();
        foreach (var raw in file.Split('/'))
            if (raw.Length > 0 && raw != ".") parts.Add(raw);
        if (parts.Count == 0) parts.Add("_");

        var last = parts[^1];
        var dot = last.LastIndexOf('.');
        extension = "";
        if (dot > 0)
        {
            extension = Component(last[(dot + 1)..]);
            parts[^1] = last[..dot];
        }
        for (var i = 0; i < parts.Count; i++) parts[i] = Component(parts[i]);
        return string.Join('/', parts);
    }

    private static string Component(string part)
    {
        switch (part)
        {
            case "": return "_";
            case ".": return "_";
            case "..": return "__";
        }
        var sb = new StringBuilder(part.Length);
        foreach (var c in part) sb.Append(char.IsControl(c) || c == '\\' ? '_' : c);
        var s = sb.ToString();
        while (Encoding.UTF8.GetByteCount(s) > MaxComponentBytes)
            s = s[..(char.IsLowSurrogate(s[^1]) && s.Length > 1 ? s.Length - 2 : s.Length - 1)];
        return s;
    }
}
