using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Workers.Core.Naming;

/// <summary>
/// The one rule for names people give corpora and queues, shared by `workers enqueue`, `workers run
/// --queues`, the JSON API and the dashboard's forms (issue 13). A name must come back unchanged from
/// every place it travels: a URL path segment (the dashboard's buttons), a query string, a terminal,
/// a log line. So: no control, format (bidi override, zero-width) or separator characters, no
/// unpaired surrogates, no '%' or '\' (ASP.NET leaves %2F encoded in route values, so a literal
/// "%2F" could not be told from an escaped '/'), no leading or trailing white space, and no part
/// between '/' that is empty, "." or ".." (URLs resolve those away).
/// </summary>
public static partial class Names
{
    /// <summary>The longest corpus name.</summary>
    public const int MaxCorpusLength = 200;

    /// <summary>The longest queue name.</summary>
    public const int MaxQueueLength = 64;

    /// <summary>What is wrong with <paramref name="name"/> as a corpus name, or null when it is fine.</summary>
    public static string? CorpusProblem(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return "is empty; give a name of 1-200 printable characters";
        if (name.Length > MaxCorpusLength) return $"is {name.Length} characters long; at most {MaxCorpusLength} are allowed";
        if (FirstUnprintable(name) is { } bad) return $"contains {bad}; names must be printable (no control, bidi-override or zero-width characters)";
        if (name.IndexOfAny(['%', '\\']) is var at and >= 0)
            return $"contains '{name[at]}', which does not survive a round trip through a dashboard URL; use letters, digits, ' ', '-', '_', '.' or '/'";
        if (char.IsWhiteSpace(name[0]) || char.IsWhiteSpace(name[^1])) return "starts or ends with white space";
        if (name.Split('/').Any(p => p is "" or "." or ".."))
            return "has a part that is empty, '.' or '..' (between '/'), which URLs resolve away; use another name";
        return null;
    }

    /// <summary>What is wrong with <paramref name="name"/> as a queue name, or null when it is fine.</summary>
    public static string? QueueProblem(string? name)
    {
        // \A and \z: '$' would also match before a final "\n", which let "q1\n" in (issue 13).
        if (name is null || !QueuePattern().IsMatch(name))
            return $"must be 1-{MaxQueueLength} letters, digits, '-', '_' or '.'" + (name is not null && FirstUnprintable(name) is { } bad ? $" (it contains {bad})" : "");
        if (name is "." or "..") return "must not be '.' or '..', which URLs resolve away";
        return null;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming <paramref name="field"/> when <paramref name="name"/> is not a valid queue name.</summary>
    public static string CheckedQueue(string? name, string field) =>
        QueueProblem(name) is { } p ? throw new ArgumentException($"{field} '{Printable(name)}' {p}.") : name!;

    /// <summary>
    /// <paramref name="text"/> safe to print on a terminal or in a log line: control, format (bidi)
    /// and separator characters and unpaired surrogates become visible escapes (<c>\u001B</c>,
    /// <c>\u202E</c>), so a file name cannot move the cursor, recolour the screen or reverse the
    /// text after it. Everything else is unchanged.
    /// </summary>
    public static string Printable(string? text)
    {
        if (text is null) return "";
        if (FirstUnprintable(text) is null) return text;
        var sb = new StringBuilder(text.Length + 16);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var cp = char.ConvertToUtf32(c, text[i + 1]);
                if (IsUnprintable(CharUnicodeInfo.GetUnicodeCategory(cp))) sb.Append(CultureInfo.InvariantCulture, $"\\U{cp:X8}");
                else sb.Append(c).Append(text[i + 1]);
                i++;
            }
            else if (char.IsSurrogate(c) || IsUnprintable(CharUnicodeInfo.GetUnicodeCategory(c)))
                sb.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>"U+202E" for the first character a terminal would not show as itself, or null.</summary>
    private static string? FirstUnprintable(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var cp = char.ConvertToUtf32(c, text[i + 1]);
                if (IsUnprintable(CharUnicodeInfo.GetUnicodeCategory(cp))) return $"U+{cp:X4}";
                i++;
            }
            else if (char.IsSurrogate(c)) return $"an unpaired surrogate U+{(int)c:X4}";
            else if (IsUnprintable(CharUnicodeInfo.GetUnicodeCategory(c))) return $"U+{(int)c:X4}";
        }
        return null;
    }

    // Cc: C0/C1 controls (ESC, NUL, newline); Cf: bidi overrides and isolates, zero-width, BOM;
    // Zl/Zp: line and paragraph separators; Cs is handled above; Co/Cn: nothing a name needs.
    private static bool IsUnprintable(UnicodeCategory cat) => cat is UnicodeCategory.Control or UnicodeCategory.Format
        or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;

    [GeneratedRegex(@"\A[A-Za-z0-9._-]{1,64}\z", RegexOptions.CultureInvariant)]
    private static partial Regex QueuePattern();
}
