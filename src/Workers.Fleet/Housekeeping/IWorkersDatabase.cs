using Npgsql;

namespace Workers.Fleet.Housekeeping;

/// <summary>
/// The process's database, as the command opened it (configured server or local cluster, migrated).
/// Housekeeping services wait for it rather than open it themselves, so a command that refuses to
/// start (bad input, a database ahead of this program) never has a service touching the database.
/// </summary>
public interface IWorkersDatabase
{
    /// <summary>Completes once the command has opened the database.</summary>
    Task<NpgsqlDataSource> WhenOpenAsync(CancellationToken ct);
}
