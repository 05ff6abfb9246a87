using Npgsql;
using Workers.Fleet.Housekeeping;

namespace Workers.Fleet.Tests.Housekeeping;

/// <summary>A database that is already open, as a command's would be.</summary>
internal sealed class OpenDatabase(NpgsqlDataSource db) : IWorkersDatabase
{
    public Task<NpgsqlDataSource> WhenOpenAsync(CancellationToken ct) => Task.FromResult(db);
}
