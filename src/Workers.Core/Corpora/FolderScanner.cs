namespace Workers.Core.Corpora;

/// <summary>
/// Finds audio files under a folder, recursively. Symlinks are followed only while they stay
/// inside the folder; links that leave it, dangling links and loops are skipped and reported,
/// never opened. Output order is ordinal by relative path, so scans are deterministic. One file is
/// listed once: a symlink to a file that is also listed (under its own name or through another
/// link) is skipped and reported, so the same audio is never processed twice. The listing's root
/// is the folder's real path (symlinks resolved), which workers check every opened file against.
/// </summary>
public static class FolderScanner
{
    public static readonly IReadOnlySet<string> AudioExtensions =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a" };

    public static CorpusListing Scan(string folder)
    {
        var root = Path.GetFullPath(folder);
        if (!Directory.Exists(root))
            throw new CorpusSourceException(File.Exists(root)
                ? $"'{folder}' is a file, not a folder or a .jsonl manifest. Pass a folder of audio files or a JSONL manifest ({{\"path\": ..., \"duration\": seconds}} a line)."
                : $"'{folder}' does not exist. Pass a folder of audio files or a JSONL manifest.");
        var realRoot = RealPath(root);
        var found = new List<(string Rel, string Real, bool IsLink)>();
        var skipped = new List<SkippedEntry>();
        var visited = new HashSet<string>(StringComparer.Ordinal) { realRoot };
        var stack = new Stack<(string Dir, string Rel, string RealDir)>();
        stack.Push((root, "", realRoot));
        while (stack.Count > 0)
        {
            var (dir, rel, realDir) = stack.Pop();
            IEnumerable<FileSystemInfo> entries;
            try
            {
                entries = new DirectoryInfo(dir).EnumerateFileSystemInfos("*", new EnumerationOptions
                {
                    RecurseSubdirectories = false, IgnoreInaccessible = false, AttributesToSkip = 0, ReturnSpecialDirectories = false,
                }).ToList();
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                skipped.Add(new SkippedEntry(rel.Length == 0 ? "." : rel, $"folder cannot be read: {e.Message}"));
                continue;
            }
            foreach (var entry in entries)
            {
                var relPath = rel.Length == 0 ? entry.Name : rel + "/" + entry.Name;
                var isDir = entry is DirectoryInfo;
                var realPath = Path.Join(realDir, entry.Name);
                var isLink = entry.LinkTarget is not null;
                if (isLink)
                {
                    FileSystemInfo? target;
                    try { target = entry.ResolveLinkTarget(returnFinalTarget: true); }
                    catch (IOException) { skipped.Add(new SkippedEntry(relPath, "symlink loop: the link resolves to itself through other links")); continue; }
                    if (target is null || !target.Exists)
                    {
                        skipped.Add(new SkippedEntry(relPath, $"dangling symlink: target '{entry.LinkTarget}' does not exist"));
                        continue;
                    }
                    var real = RealPath(target.FullName);
                    if (!IsUnder(real, realRoot))
                    {
                        skipped.Add(new SkippedEntry(relPath, $"symlink points outside the corpus folder (to {real}); not followed"));
                        continue;
                    }
                    isDir = target is DirectoryInfo;
                    realPath = real;
                    if (isDir && !visited.Add(real))
                    {
                        skipped.Add(new SkippedEntry(relPath, "symlink loop: the folder it points to is already being scanned"));
                        continue;
                    }
                }
                else if (isDir && !visited.Add(realPath))
                {
                    continue;
                }
                if (isDir) stack.Push((entry.FullName, relPath, realPath));
                else if (AudioExtensions.Contains(Path.GetExtension(entry.Name))) found.Add((relPath, realPath, isLink));
            }
        }

        // One file, one entry: of the names that reach the same real file, keep the file's own name
        // (else the ordinally first link) and report the others.
        found.Sort((a, b) => a.IsLink != b.IsLink ? a.IsLink.CompareTo(b.IsLink) : string.CompareOrdinal(a.Rel, b.Rel));
        var kept = new Dictionary<string, string>(StringComparer.Ordinal);
        var files = new List<SourceFile>(found.Count);
        foreach (var (relPath, realPath, _) in found)
        {
            if (kept.TryGetValue(realPath, out var first))
                skipped.Add(new SkippedEntry(relPath, $"the same file as '{first}' (reached through a symlink), which is already listed; each file is processed once"));
            else
            {
                kept.Add(realPath, relPath);
                files.Add(new SourceFile(relPath, null));
            }
        }
        if (files.Count == 0)
            throw new CorpusSourceException(
                $"No audio files found under '{folder}' (looked for {string.Join(", ", AudioExtensions.Order())} in any case, recursively" +
                (skipped.Count > 0 ? $"; {skipped.Count} entries skipped, e.g. {skipped[0].Path}: {skipped[0].Reason}" : "") + ").");
        files.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        skipped.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return new CorpusListing("folder", root, realRoot, files, skipped);
    }

    private static bool IsUnder(string path, string root) =>
        path == root || path.StartsWith(root.EndsWith('/') ? root : root + "/", StringComparison.Ordinal);

    /// <summary>The path with every symlink in it resolved.</summary>
    internal static string RealPath(string path)
    {
        var full = Path.GetFullPath(path);
        var parts = full.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var current = "/";
        for (var i = 0; i < parts.Length; i++)
        {
            var next = Path.Combine(current, parts[i]);
            var info = new FileInfo(next);
            if (info.LinkTarget is not null)
            {
                var target = info.ResolveLinkTarget(returnFinalTarget: true);
                next = target is null ? next : RealPath(target.FullName);
            }
            current = next;
        }
        return current;
    }
}
