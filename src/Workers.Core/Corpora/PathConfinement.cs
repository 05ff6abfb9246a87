namespace Workers.Core.Corpora;

/// <summary>A requested folder that passed <see cref="PathConfinement"/>: the request made absolute,
/// its real path (every symlink resolved; scan this one, not the request) and the allowed root it lies in.</summary>
public sealed record ConfinedFolder(string Requested, string FullPath, string RealPath, string Root);

/// <summary>A requested path is refused; the message says what is wrong and what to do.</summary>
public sealed class PathConfinementException(string message) : ArgumentException(message);

/// <summary>
/// Keeps folders asked for over the dashboard inside the configured roots (Corpus:AllowedRoots).
/// A request is absolute or relative to the first root; it must not contain <c>..</c>; it is made
/// absolute with <see cref="Path.GetFullPath(string)"/>, then every component's symlinks are
/// resolved (the real path), and the real path must be an existing folder inside the real path of
/// an allowed root. So a symlink inside a root that points outside (the folder itself or any
/// parent) is refused, and a root that is itself a symlink still works.
/// </summary>
public sealed class PathConfinement
{
    private readonly IReadOnlyList<string> _roots;
    private readonly IReadOnlyList<string> _realRoots;

    /// <param name="allowedRoots">Absolute paths of existing folders (validated by CorpusOptions).</param>
    public PathConfinement(IReadOnlyList<string> allowedRoots)
    {
        if (allowedRoots.Count == 0) throw new ArgumentException("At least one allowed root is needed.", nameof(allowedRoots));
        _roots = allowedRoots.Select(r => Path.TrimEndingDirectorySeparator(Path.GetFullPath(r))).ToList();
        _realRoots = _roots.Select(r => FolderScanner.RealPath(r)).ToList();
    }

    public IReadOnlyList<string> Roots => _roots;

    public ConfinedFolder Resolve(string? requested)
    {
        var roots = string.Join(", ", _roots);
        if (string.IsNullOrWhiteSpace(requested))
            throw new PathConfinementException($"No folder given. Give a folder under {roots} (absolute, or relative to {_roots[0]}).");
        if (requested.Any(char.IsControl))
            throw new PathConfinementException("The folder path contains control characters; type the path as plain text.");
        if (requested.Replace('\\', '/').Split('/').Contains(".."))
            throw new PathConfinementException(
                $"'{requested}' contains '..'; parent-folder steps are not accepted. Give the folder's path under {roots} without '..'.");

        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(Path.IsPathRooted(requested) ? requested : Path.Combine(_roots[0], requested)));
        string real;
        try { real = Path.TrimEndingDirectorySeparator(FolderScanner.RealPath(full)); }
        catch (IOException e)
        {
            throw new PathConfinementException($"'{requested}' cannot be resolved (a symlink loop?): {e.Message}. Give a folder under {roots}.");
        }

        var root = _realRoots.Select((r, i) => (Real: r, Configured: _roots[i])).FirstOrDefault(r => IsUnder(real, r.Real)).Configured;
        if (root is null)
        {
            var link = FirstSymlink(full);
            var through = link is null ? "" : $" through the symlink '{link}'";
            var lexicallyInside = _roots.Any(r => IsUnder(full, r)) || _realRoots.Any(r => IsUnder(full, r));
            throw new PathConfinementException(lexicallyInside
                ? $"'{requested}' leads{through} to '{real}', which is outside the allowed corpus roots ({roots}). " +
                  "Symlinks may not lead out of a root: copy or move the data under a root, or ask an admin to add its folder to Corpus:AllowedRoots."
                : $"'{requested}' ({real}) is outside the allowed corpus roots ({roots}). " +
                  "Pick a folder under one of them, or ask an admin to add its folder to Corpus:AllowedRoots.");
        }
        if (File.Exists(real))
            throw new PathConfinementException($"'{requested}' is a file, not a folder. Give the folder that holds the audio files (it is searched recursively).");
        if (!Directory.Exists(real))
            throw new PathConfinementException(
                $"'{requested}' does not exist{(real != full ? $" (it resolves to '{real}')" : "")}. Check the spelling; relative paths start at {_roots[0]}.");
        return new ConfinedFolder(requested, full, real, root);
    }

    private static bool IsUnder(string path, string root) =>
        path == root || path.StartsWith(root == "/" ? root : root + "/", StringComparison.Ordinal);

    /// <summary>The first component of <paramref name="full"/> that is a symlink, for the message.</summary>
    private static string? FirstSymlink(string full)
    {
        var current = "/";
        foreach (var part in full.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, part);
            if (new FileInfo(current).LinkTarget is not null) return current;
        }
        return null;
    }
}
