namespace Workers.Dashboard.Security;

/// <summary>
/// Where a posted form may send the browser back to: only a path of this dashboard. Browsers drop
/// tabs and newlines from URLs and read '\' as '/', so "/\t/evil.example/x" or "/\evil.example"
/// would become the other site "//evil.example" (issue 13). A path is kept only when it starts with
/// one '/', and every character is printable ASCII other than space and '\' (our own links are
/// percent-encoded, so they always are); anything else goes to "/".
/// </summary>
public static class LocalReturnPath
{
    /// <summary>The longest return path kept.</summary>
    public const int MaxLength = 2048;

    public static string Parse(string? path)
    {
        if (string.IsNullOrEmpty(path) || path.Length > MaxLength || path[0] != '/') return "/";
        if (path.Length > 1 && path[1] is '/' or '\\') return "/";
        foreach (var c in path)
            if (c is <= ' ' or >= '\x7f' or '\\') return "/";
        return path;
    }
}
