using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Migrations;

/// <summary>One migration file: <c>NNN_name.sql</c>.</summary>
public sealed record Migration(int Version, string Name, string Sql)
{
    public string Checksum { get; } = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(Sql))).ToLowerInvariant();
}

/// <summary>
/// Applies <c>migrations/NNN_name.sql</c> in order, each in its own transaction, recorded with
/// its sha256 in <c>schema_migrations</c>. A session advisory lock serializes concurrent
/// runners (ten nodes starting at once apply each file once; the others wait, then find nothing
/// to do). An applied file whose content changed is refused: migrations are append-only.
/// </summary>
public sealed partial class MigrationRunner(NpgsqlDataSource dataSource, ILogger? logger = null)
{
    private readonly ILogger _log = logger ?? NullLogger.Instance;

    /// <summary>The migrations embedded in this build.</summary>
    public static IReadOnlyList<Migration> Embedded()
    {
        var asm = typeof(MigrationRunner).Assembly;
        var list = new List<Migration>();
        foreach (var res in asm.GetManifestResourceNames().Where(n => n.StartsWith("migrations/", StringComparison.Ordinal)))
        {
            using var s = asm.GetManifestResourceStream(res)!;
            using var r = new StreamReader(s);
            list.Add(Parse(res["migrations/".Length..], r.ReadToEnd()));
        }
        return Ordered(list);
    }

    /// <summary>Migrations from a folder (tests; an operator checking a release).</summary>
    public static IReadOnlyList<Migration> FromDirectory(string dir) =>
        Ordered(Directory.GetFiles(dir, "*.sql").Select(f => Parse(Path.GetFileName(f), File.ReadAllText(f))).ToList());

    private static Migration Parse(string fileName, string sql)
    {
        var m = FileNamePattern().Match(fileName);
        if (!m.Success)
            throw new MigrationException($"Migration file '{fileName}' is not named NNN_name.sql.");
        return new Migration(int.Parse(m.Groups[1].Value), m.Groups[2].Value, sql);
    }

    private static IReadOnlyList<Migration> Ordered(List<Migration> list)
    {
        var dup = list.GroupBy(m => m.Version).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null)
            throw new MigrationException($"Two migrations share version {dup.Key:000}: {string.Join(", ", dup.Select(m => m.Name))}.");
        return list.OrderBy(m => m.Version).ToList();
    }

    /// <summary>
    /// Applies what is missing; returns the versions applied by this call. Every command that opens
    /// the database comes through here, so each refuses a database that is ahead of this build
    /// (<see cref="SchemaAheadException"/>).
    /// </summary>
    public async Task<IReadOnlyList<int>> MigrateAsync(IReadOnlyList<Migration>? migrations = null, CancellationToken ct = default)
    {
        migrations ??= Embedded();
        await using var conn = await dataSource.OpenConnectionAsync(ct);

        // Keyed by schema, so independent deployments (or test schemas) in one database do not wait on each other.
        await using (var lockCmd = new NpgsqlCommand(SqlCatalog.Get("MigrationsLock"), conn))
            await lockCmd.ExecuteNonQueryAsync(ct);
        try
        {
            await using (var create = new NpgsqlCommand(SqlCatalog.Get("MigrationsTableCreate"), conn))
                await create.ExecuteNonQueryAsync(ct);

            Dictionary<int, (string Name, string Checksum)> applied;
            await using (var read = new NpgsqlCommand(SqlCatalog.Get("MigrationsApplied"), conn))
                applied = (await Applied.ListAsync(read, ct)).ToDictionary(a => a.Version, a => (a.Name, a.Checksum));

            // A database migrated by a newer release has tables and columns this build does not know:
            // workers would crash-loop on them and pages fail. Refuse before touching anything (issue 13).
            var newestKnown = migrations.Count == 0 ? 0 : migrations.Max(m => m.Version);
            if (applied.Count > 0 && applied.Keys.Max() is var newestApplied && newestApplied > newestKnown)
                throw new SchemaAheadException(newestApplied, applied[newestApplied].Name, newestKnown);

            var known = migrations.ToDictionary(m => m.Version);
            foreach (var (version, (name, checksum)) in applied)
            {
                if (known.TryGetValue(version, out var m) && m.Checksum != checksum)
                    throw new MigrationException(
                        $"Migration {version:000}_{name}.sql was changed after it was applied (checksum {checksum[..12]} in the database, " +
                        $"{m.Checksum[..12]} in this build). Applied migrations are never edited: restore the file and put the change " +
                        "in a new migration with the next number.");
            }

            var done = new List<int>();
            foreach (var m in migrations.Where(m => !applied.ContainsKey(m.Version)))
            {
                await using var tx = await conn.BeginTransactionAsync(ct);
                try
                {
                    await using (var apply = new NpgsqlCommand(m.Sql, conn, tx))
                        await apply.ExecuteNonQueryAsync(ct);
                }
                catch (PostgresException e) when (conn.FullState == System.Data.ConnectionState.Open)
                {
                    // The migration's own error. A dropped connection (server restart, failover) is rethrown as it is:
                    // transient, so a node starting meanwhile waits and retries instead of failing.
                    throw new MigrationException($"Migration {m.Version:000}_{m.Name}.sql failed: {e.MessageText} (SQLSTATE {e.SqlState}). Nothing of it was applied.", e);
                }
                await using (var record = new NpgsqlCommand(SqlCatalog.Get("MigrationRecord"), conn, tx))
                {
                    record.Parameters.AddWithValue("version", m.Version);
                    record.Parameters.AddWithValue("name", m.Name);
                    record.Parameters.AddWithValue("checksum", m.Checksum);
                    await record.ExecuteNonQueryAsync(ct);
                }
                await tx.CommitAsync(ct);
                done.Add(m.Version);
                _log.LogInformation("Applied migration {Version:000}_{Name}", m.Version, m.Name);
            }
            // A type created by a migration (shard_state) must be known to this data source's connections.
            if (done.Count > 0) await conn.ReloadTypesAsync(ct);
            return done;
        }
        finally
        {
            // A connection the server dropped (restart, failover) already released the lock with its session; unlocking
            // on it would throw "Connection is not open" and hide the real, transient error from the caller's retry.
            if (conn.FullState == System.Data.ConnectionState.Open)
            {
                await using var unlock = new NpgsqlCommand(SqlCatalog.Get("MigrationsUnlock"), conn);
                await unlock.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }
    }

    private static readonly RowMap<(int Version, string Name, string Checksum)> Applied = new("MigrationsApplied", c =>
    {
        var version = c.Column<int>("version");
        var name = c.Column<string>("name");
        var checksum = c.Column<string>("checksum");
        return r => (r.Get(version), r.Get(name), r.Get(checksum));
    });

    [GeneratedRegex(@"^(\d{3,})_([A-Za-z0-9_]+)\.sql$")]
    private static partial Regex FileNamePattern();
}

public sealed class MigrationException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The database was migrated by a newer release than this one (it has a row in
/// <c>schema_migrations</c> above the newest migration this build carries). Nothing was changed.
/// </summary>
public sealed class SchemaAheadException(int databaseVersion, string databaseName, int programVersion) : Exception(
    $"The database schema is at version {databaseVersion:000} ({databaseVersion:000}_{databaseName}.sql), ahead of this program, which knows migrations " +
    $"up to {programVersion:000}: it was migrated by a newer release of workers. Nothing was changed. Run the release that migrated it " +
    "(upgrade this node's workers to it); migrations are never rolled back, so do not point an older release at this database.")
{
    public int DatabaseVersion { get; } = databaseVersion;
    public int ProgramVersion { get; } = programVersion;
}
