using Workers.Core.Options;
using Npgsql;
using NpgsqlTypes;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Fleet;

/// <summary>A worker process as it registers itself.</summary>
public sealed record WorkerRegistration(string Id, string Node, int Pid, int Slot, string? GpuIndex, string? GpuUuid, string? GpuName,
    string ExecutionProvider, int Threads, string Version, IReadOnlyList<string> Queues)
{
    /// <summary>The pipelines the process has loaded and serves (009); null: not said (claims any).</summary>
    public IReadOnlyList<string>? Pipelines { get; init; }
}

/// <summary>A registry row, as read back.</summary>
public sealed record WorkerRow(string Id, string Node, int Pid, int Slot, string? GpuIndex, string? GpuUuid, string? GpuName,
    string ExecutionProvider, int Threads, string Version, string State, DateTime StartedAt, DateTime HeartbeatAt, DateTime? StoppedAt,
    long? CurrentShard, int ShardsCompleted, double AudioSecondsDone, double? LastRate, string? Detail,
    long Claims = 0, double ClaimSeconds = 0, double? ClaimLastMs = null, double? ClaimMaxMs = null,
    TimeSpan HeartbeatAge = default, double? ClockOffsetMs = null, DateTime? ClockCheckedAt = null)
{
    /// <summary>A GPU slot whose session runs on CPU: the silent failure to flag.</summary>
    public bool GpuSlotOnCpu => GpuIndex is not null && ExecutionProvider != "CUDAExecutionProvider";

    /// <summary>The registry state, with a running worker silent for longer than <paramref name="staleAfter"/>
    /// shown as <c>stale</c> (it died without saying so): `workers status --fleet`, /fleet, /api/fleet and /metrics alike.
    /// Judged by <see cref="HeartbeatAge"/>, measured on the database's clock, so a reader whose clock is off sees the same.</summary>
    public string StateAt(TimeSpan staleAfter) => State == "running" && HeartbeatAge > staleAfter ? "stale" : State;

    /// <summary>Whether this worker's clock was off the database's by more than <paramref name="threshold"/> at its last check.</summary>
    public bool ClockSkewed(TimeSpan threshold) => ClockOffsetMs is { } ms && Math.Abs(ms) > threshold.TotalMilliseconds;
}

/// <summary>This process's clock minus the database's (<see cref="OffsetMs"/>, positive: ahead), known to within
/// <see cref="UncertaintyMs"/> (half the round trip of the best sample).</summary>
public readonly record struct ClockReading(double OffsetMs, double UncertaintyMs)
{
    /// <summary>Off by more than <paramref name="threshold"/> even allowing for the measurement's uncertainty.</summary>
    public bool Beyond(TimeSpan threshold) => Math.Abs(OffsetMs) - UncertaintyMs > threshold.TotalMilliseconds;
}

/// <summary>One GPU's latest sample.</summary>
public sealed record GpuSample(string Node, int Index, string Uuid, string Name, double? UtilizationPercent, double? MemoryUsedMb,
    double? MemoryTotalMb, double? TemperatureC, DateTime SampledAt);

/// <summary>
/// The worker registry: each worker process registers, heartbeats (with its current shard),
/// counts its work, and is marked stopped on a clean exit. A row still 'running' whose heartbeat
/// is older than a few heartbeats belongs to a process that died without a word; readers judge
/// that by heartbeat age (see <see cref="WorkerRow.HeartbeatAge"/>, on the database's clock). Registration and
/// every heartbeat also measure the worker's clock against the database's (<see cref="WorkerRow.ClockOffsetMs"/>).
/// </summary>
public sealed class WorkerRegistry(NpgsqlDataSource db, TimeProvider time)
{
    /// <summary>Workers running, or stopped within this long, are listed (status --fleet, /fleet, /api/fleet, /metrics).</summary>
    public static readonly TimeSpan FleetWindow = TimeSpan.FromHours(1);

    /// <summary>A running worker without a heartbeat for this long (3 heartbeat periods) is stale.</summary>
    public static TimeSpan StaleAfter(QueueOptions queue) => 3 * queue.Heartbeat;

    /// <summary>Registers (or re-registers) the worker.</summary>
    /// <returns>This process's clock minus the database's, in milliseconds (positive: ahead), measured in the same statement.</returns>
    public async Task<double> RegisterAsync(WorkerRegistration w, CancellationToken ct = default)
    {
        // Connected first: the measurement must not include opening (and authenticating) a connection.
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand(SqlCatalog.Get("WorkerRegister"), conn);
        cmd.Parameters.AddWithValue("id", w.Id);
        cmd.Parameters.AddWithValue("node", w.Node);
        cmd.Parameters.AddWithValue("pid", w.Pid);
        cmd.Parameters.AddWithValue("slot", w.Slot);
        cmd.Parameters.AddWithValue("gpu_index", (object?)w.GpuIndex ?? DBNull.Value);
        cmd.Parameters.AddWithValue("gpu_uuid", (object?)w.GpuUuid ?? DBNull.Value);
        cmd.Parameters.AddWithValue("gpu_name", (object?)w.GpuName ?? DBNull.Value);
        cmd.Parameters.AddWithValue("provider", w.ExecutionProvider);
        cmd.Parameters.AddWithValue("threads", w.Threads);
        cmd.Parameters.AddWithValue("version", w.Version);
        cmd.Parameters.AddWithValue("queues", w.Queues.ToArray());
        cmd.Parameters.Add(new NpgsqlParameter("pipelines", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text) { Value = (object?)w.Pipelines?.ToArray() ?? DBNull.Value });
        cmd.Parameters.Add(DbClock.Now(time));
        cmd.Parameters.Add(DbClock.ClientNow(time)); // last, just before it is sent
        return (double)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>
    /// Measures this process's clock against the database's as NTP does: a few <c>SELECT clock_timestamp()</c>
    /// round trips, the one with the shortest round trip kept, its midpoint compared with the database's answer.
    /// The first round trip of a process pays for connecting and JIT compilation (seconds on a loaded machine),
    /// which is why the best of several is kept. Start-up's skew check uses this; registration and heartbeats
    /// measure in their own statement.
    /// </summary>
    public async Task<ClockReading> MeasureClockAsync(int samples = 3, CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        var best = new ClockReading(0, double.PositiveInfinity);
        for (var i = 0; i < samples; i++)
        {
            await using var cmd = new NpgsqlCommand(SqlCatalog.Get("DatabaseClock"), conn);
            var sent = time.GetUtcNow();
            var database = (DateTime)(await cmd.ExecuteScalarAsync(ct))!;
            var received = time.GetUtcNow();
            var half = (received - sent).TotalMilliseconds / 2;
            if (half < best.UncertaintyMs)
                best = new ClockReading((sent.UtcDateTime.AddMilliseconds(half) - DateTime.SpecifyKind(database, DateTimeKind.Utc)).TotalMilliseconds, half);
        }
        return best;
    }

    /// <summary>Alive, on which shard, and (when given) the claim latency since the last beat: one UPDATE, which also
    /// measures this process's clock against the database's.</summary>
    /// <returns>The clock offset in milliseconds (positive: this process is ahead), or null when the row is gone.</returns>
    public async Task<double?> HeartbeatAsync(string id, long? shard, int? attempt, ClaimStats? claims = null, CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct); // connected first, as in RegisterAsync
        await using var cmd = new NpgsqlCommand(SqlCatalog.Get("WorkerHeartbeat"), conn);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.Add(DbClock.Now(time));
        cmd.Parameters.AddWithValue("shard", (object?)shard ?? DBNull.Value);
        cmd.Parameters.AddWithValue("attempt", (object?)attempt ?? DBNull.Value);
        cmd.Parameters.Add(new NpgsqlParameter("claims", NpgsqlDbType.Bigint) { Value = (object?)claims?.Claims ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter("claim_seconds", NpgsqlDbType.Double) { Value = (object?)claims?.ClaimSeconds ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter("claim_last_ms", NpgsqlDbType.Double) { Value = (object?)claims?.LastMs ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter("claim_max_ms", NpgsqlDbType.Double) { Value = (object?)claims?.IntervalMaxMs ?? DBNull.Value });
        cmd.Parameters.Add(DbClock.ClientNow(time)); // last, just before it is sent
        return await cmd.ExecuteScalarAsync(ct) as double?;
    }

    /// <summary>Fleet-wide claim latency for /metrics: totals over every registry row; max and latest over running workers.</summary>
    public async Task<(long Claims, double Seconds, double? MaxMs, double? LastMs)> ClaimLatencyAsync(CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("WorkerClaimLatency"));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (r.GetInt64(0), r.GetDouble(1), Dbl(r, 2), Dbl(r, 3));
    }

    public async Task ShardDoneAsync(string id, double audioSeconds, double rate, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("WorkerShardDone"));
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("audio", audioSeconds);
        cmd.Parameters.AddWithValue("rate", rate);
        cmd.Parameters.Add(DbClock.Now(time));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Marks the worker stopped (clean exit) or crash_looping (the supervisor gave up on its slot).</summary>
    public async Task StopAsync(string id, string state = "stopped", string? detail = null, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("WorkerStop"));
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("state", state);
        cmd.Parameters.AddWithValue("detail", (object?)detail ?? DBNull.Value);
        cmd.Parameters.Add(DbClock.Now(time));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Running workers, and those stopped within <see cref="FleetWindow"/> (on the database's clock).</summary>
    public async Task<IReadOnlyList<WorkerRow>> ListAsync(CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("WorkerList"));
        cmd.Parameters.Add(DbClock.Now(time));
        cmd.Parameters.AddWithValue("window", FleetWindow);
        var list = new List<WorkerRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new WorkerRow(r.GetString(0), r.GetString(1), r.GetInt32(2), r.GetInt32(3), Str(r, 4), Str(r, 5), Str(r, 6), r.GetString(7),
                r.GetInt32(8), r.GetString(9), r.GetString(10), r.GetDateTime(11), r.GetDateTime(12), r.IsDBNull(13) ? null : r.GetDateTime(13),
                r.IsDBNull(14) ? null : r.GetInt64(14), r.GetInt32(15), r.GetDouble(16), r.IsDBNull(17) ? null : r.GetDouble(17), Str(r, 18),
                r.GetInt64(19), r.GetDouble(20), Dbl(r, 21), Dbl(r, 22),
                r.GetTimeSpan(23), Dbl(r, 24), r.IsDBNull(25) ? null : r.GetDateTime(25)));
        return list;
    }

    public async Task UpsertGpuAsync(GpuSample s, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("GpuTelemetryUpsert"));
        cmd.Parameters.AddWithValue("node", s.Node);
        cmd.Parameters.AddWithValue("gpu_index", s.Index);
        cmd.Parameters.AddWithValue("gpu_uuid", s.Uuid);
        cmd.Parameters.AddWithValue("gpu_name", s.Name);
        cmd.Parameters.AddWithValue("util", (object?)s.UtilizationPercent ?? DBNull.Value);
        cmd.Parameters.AddWithValue("mem_used", (object?)s.MemoryUsedMb ?? DBNull.Value);
        cmd.Parameters.AddWithValue("mem_total", (object?)s.MemoryTotalMb ?? DBNull.Value);
        cmd.Parameters.AddWithValue("temp", (object?)s.TemperatureC ?? DBNull.Value);
        cmd.Parameters.Add(DbClock.Now(time)); // sampled_at on the database's clock, like the heartbeats
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<GpuSample>> ListGpusAsync(CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("GpuTelemetryList"));
        var list = new List<GpuSample>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new GpuSample(r.GetString(0), r.GetInt32(1), r.GetString(2), r.GetString(3), Dbl(r, 4), Dbl(r, 5), Dbl(r, 6), Dbl(r, 7), r.GetDateTime(8)));
        return list;
    }

    private static string? Str(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
    private static double? Dbl(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetDouble(i);
}
