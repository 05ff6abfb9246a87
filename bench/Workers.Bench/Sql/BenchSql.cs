using System.Text.RegularExpressions;
using Npgsql;

namespace Workers.Bench.Sql;

/// <summary>
/// The benches' named SQL statements, loaded from the embedded <c>Sql/*.sql</c> files the way
/// Workers.Postgres's <c>SqlCatalog</c> loads the product's: each statement starts with a line
/// <c>-- name: NounVerb</c> and runs to the next such line. Statements are parameterized; nothing is
/// assembled from input. (Bench statements seed and check bench data; they are no code path of the product.)
/// </summary>
internal static partial class BenchSql
{
    private static readonly Lazy<IReadOnlyDictionary<string, string>> Statements = new(Load);

    /// <summary>The statement named <paramref name="name"/>.</summary>
    public static string Get(string name) =>
        Statements.Value.TryGetValue(name, out var sql)
            ? sql
            : throw new KeyNotFoundException($"No SQL statement named '{name}' in the bench's embedded Sql/*.sql files.");

    public static IReadOnlyCollection<string> Names => (IReadOnlyCollection<string>)Statements.Value.Keys;

    /// <summary>A command for the statement <paramref name="name"/> on <paramref name="db"/>.</summary>
    public static NpgsqlCommand Command(NpgsqlDataSource db, string name) => db.CreateCommand(Get(name));

    /// <summary>A command for the statement <paramref name="name"/> on an open connection.</summary>
    public static NpgsqlCommand Command(NpgsqlConnection connection, string name) => new(Get(name), connection);

    private static IReadOnlyDictionary<string, string> Load()
    {
        var asm = typeof(BenchSql).Assembly;
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
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
                if (!result.TryAdd(matches[i].Groups[1].Value, text[start..end].Trim()))
                    throw new InvalidOperationException($"SQL statement '{matches[i].Groups[1].Value}' is defined twice ({resource}).");
            }
        }
        return result;
    }

    [GeneratedRegex(@"^--\s*name:\s*(\w+)\s*$", RegexOptions.Multiline)]
    private static partial Regex NameLine();
}
