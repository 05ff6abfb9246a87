using System.Diagnostics;
using Npgsql;
using Workers.Postgres.Cluster;
using Workers.Bench.Sql;
using Workers.Postgres.Sql;

namespace Workers.Bench;

/// <summary>
/// The soak's own database in embedded mode (issue 11): a primary and a synchronous streaming standby,
/// two local clusters under the soak's folder, and a two-host connection string (Target Session
/// Attributes=read-write) that every process of the soak is given. <see cref="FailoverAsync"/> is the
/// operator's failover: the primary is SIGKILLed, the standby promoted, and a new standby built from it
/// on the dead primary's port, so the connection string stays valid for the next failover.
/// </summary>
internal sealed class SoakDatabasePair
{
    public const string StandbyName = "workers_standby";

    private LocalCluster _primary;
    private LocalCluster _standby;

    private SoakDatabasePair(LocalCluster primary, LocalCluster standby, string connectionString)
    {
        (_primary, _standby, ConnectionString) = (primary, standby, connectionString);
    }

    /// <summary>Both hosts; whichever accepts writes is used.</summary>
    public string ConnectionString { get; }

    public int Failovers { get; private set; }

    public static async Task<SoakDatabasePair> StartAsync(string root, CancellationToken ct)
    {
        var a = new LocalCluster(Path.Combine(root, "a"), durable: false);
        var b = new LocalCluster(Path.Combine(root, "b"), durable: false);
        var primaryCs = await a.StartAsync(ct);
        await using (var conn = await OpenAsync(primaryCs, ct))
        {
            // Synchronous commit to the standby, set before it is copied (why: Sql/soak.sql, StandbySynchronousSet).
            await using (var cmd = BenchSql.Command(conn, "StandbySynchronousSet"))
                await cmd.ExecuteNonQueryAsync(ct);
            await b.StartStandbyAsync(a, StandbyName, ct: ct);
            await WaitSynchronousAsync(conn, ct);
        }
        var cs = new NpgsqlConnectionStringBuilder(primaryCs)
        {
            Host = $"127.0.0.1:{a.Port},127.0.0.1:{b.Port}",
            TargetSessionAttributes = "read-write",
        }.ConnectionString;
        return new SoakDatabasePair(a, b, cs);
    }

    /// <summary>SIGKILLs the primary, promotes the standby, builds a new standby on the dead one's port. Says what it did.</summary>
    public async Task<string> FailoverAsync(CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var (dead, promoted) = (_primary, _standby);
        var port = dead.Port ?? throw new InvalidOperationException("the primary has no port");
        dead.Kill();
        await promoted.PromoteAsync(ct);
        var promotedAfter = sw.Elapsed;
        (_primary, _standby) = (promoted, dead);
        // Until the new standby is streaming, the new primary's commits wait for it (synchronous_standby_names).
        var newStandbyCs = await dead.StartStandbyAsync(promoted, StandbyName, port, ct);
        await using (var conn = await OpenAsync(new NpgsqlConnectionStringBuilder(newStandbyCs) { Port = promoted.Port!.Value }.ConnectionString, ct))
            await WaitSynchronousAsync(conn, ct);
        Failovers++;
        return $"primary :{port} SIGKILLed, standby :{promoted.Port} promoted after {promotedAfter.TotalSeconds:0.0} s, " +
               $"new synchronous standby on :{port} after {sw.Elapsed.TotalSeconds:0.0} s";
    }

    /// <summary>Stops the primary for a while and starts it again (the soak's PostgreSQL stop/start fault).</summary>
    public async Task RestartPrimaryAsync(TimeSpan down, CancellationToken ct)
    {
        await _primary.StopAsync(ct);
        await Task.Delay(down, ct);
        await _primary.StartAsync(ct);
    }

    /// <summary>Makes sure the primary runs (after an interrupted fault).</summary>
    public Task StartPrimaryAsync(CancellationToken ct) => _primary.StartAsync(ct);

    public async Task DestroyAsync()
    {
        await _standby.DestroyAsync();
        await _primary.DestroyAsync();
    }

    private static async Task WaitSynchronousAsync(NpgsqlConnection primary, CancellationToken ct)
    {
        var wait = Stopwatch.StartNew();
        while (true)
        {
            await using var cmd = BenchSql.Command(primary, "StandbySynchronousCount");
            cmd.Parameters.AddWithValue("name", StandbyName);
            if (await SynchronousStandbys.SingleAsync(cmd, ct) > 0) return;
            if (wait.Elapsed > TimeSpan.FromSeconds(60)) throw new LocalClusterException("The soak's standby did not become a synchronous standby within 60 s; see its postgresql.log.");
            await Task.Delay(100, ct);
        }
    }

    private static async Task<NpgsqlConnection> OpenAsync(string cs, CancellationToken ct)
    {
        var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(cs) { Pooling = false }.ConnectionString);
        await conn.OpenAsync(ct);
        return conn;
    }

    private static readonly RowMap<long> SynchronousStandbys = new("StandbySynchronousCount", c =>
    {
        var standbys = c.Column<long>("standbys");
        return r => r.Get(standbys);
    });
}
