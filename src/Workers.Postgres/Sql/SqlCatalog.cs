using System.Reflection;
using System.Text.RegularExpressions;

namespace Workers.Postgres.Sql;

/// <summary>
/// Named SQL statements loaded from the embedded <c>Sql/*.sql</c> files. Each statement starts
/// with a line <c>-- name: NounVerb</c> (River's convention) and runs to the next such line.
/// A block starting <c>-- fragment: Name</c> is a piece of SQL shared by several statements, which
/// write <c>{{Name}}</c> where it goes; it is put in once, at load, from the files themselves.
/// Statements are parameterized; nothing is ever assembled from input.
/// </summary>
public static partial class SqlCatalog
{
    private static readonly Lazy<IReadOnlyDictionary<string, string>> Statements = new(Load);

    public static string Get(string name) =>
        Statements.Value.TryGetValue(name, out var sql)
            ? sql
            : throw new KeyNotFoundException($"No SQL statement named '{name}' in the embedded Sql/*.sql files.");

    public static IReadOnlyCollection<string> Names => (IReadOnlyCollection<string>)Statements.Value.Keys;

    private static IReadOnlyDictionary<string, string> Load() => Load(typeof(SqlCatalog).Assembly);

    /// <summary>
    /// The named statements in <paramref name="asm"/>'s embedded <c>sql/*.sql</c> resources, fragments put in:
    /// the loader of this catalog, for another assembly's own statements (the benches').
    /// </summary>
    public static IReadOnlyDictionary<string, string> Load(Assembly asm)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var fragments = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var resource in asm.GetManifestResourceNames().Where(n => n.StartsWith("sql/", StringComparison.Ordinal)))
        {
            using var stream = asm.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            var text = reader.ReadToEnd();
            var matches = NameLine().Matches(text);
            for (var i = 0; i < matches.Count; i++)
            {
                var start = matches[i].Index + matches[i].Length;
                var end = i + 1 < matches.Count ? matches[i + 1].Index : text.Length;
                var (kind, name) = (matches[i].Groups[1].Value, matches[i].Groups[2].Value);
                if (!(kind == "name" ? result : fragments).TryAdd(name, text[start..end].Trim()))
                    throw new InvalidOperationException($"SQL {kind} '{name}' is defined twice ({resource}).");
            }
        }
        foreach (var (name, sql) in result.ToList())
        {
            var expanded = Fragment().Replace(sql, m => fragments.TryGetValue(m.Groups[1].Value, out var f)
                ? f.Trim()
                : throw new InvalidOperationException($"SQL statement '{name}' uses fragment '{m.Groups[1].Value}', which no Sql/*.sql file defines."));
            result[name] = expanded;
        }
        return result;
    }

    [GeneratedRegex(@"^--\s*(name|fragment):\s*(\w+)\s*$", RegexOptions.Multiline)]
    private static partial Regex NameLine();

    [GeneratedRegex(@"\{\{(\w+)\}\}")]
    private static partial Regex Fragment();
}
