using Npgsql;
using Workers.Postgres.Sql;

namespace Workers.Bench.Sql;

/// <summary>
/// The benches' named SQL statements, loaded from the embedded <c>Sql/*.sql</c> files by
/// Workers.Postgres's <c>SqlCatalog</c> loader, as the product's are: each statement starts with a line
/// <c>-- name: NounVerb</c> and runs to the next such line. Statements are parameterized; nothing is
/// assembled from input. (Bench statements seed and check bench data; they are no code path of the product.)
/// </summary>
internal static class BenchSql
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

    private static IReadOnlyDictionary<string, string> Load() => SqlCatalog.Load(typeof(BenchSql).Assembly);
}
