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
        return await ClockOffset.SingleAsync(cmd, ct);
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
            var sent = time.GetUtcNow();
            var database = await DbClock.ReadAsync(conn, ct);
            var received = time.GetUtcNow();
            var half = (received - sent).TotalMilliseconds / 2;
            if (half < best.UncertaintyMs)
                best = new ClockReading((sent.UtcDateTime.AddMilliseconds(half) - database).TotalMilliseconds, half);
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
        return await BeatClockOffset.FirstOrDefaultAsync(cmd, ct);
    }

    /// <summary>Fleet-wide claim latency for /metrics: totals over every registry row; max and latest over running workers.</summary>
    public async Task<(long Claims, double Seconds, double? MaxMs, double? LastMs)> ClaimLatencyAsync(CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("WorkerClaimLatency"));
        return await ClaimLatencyTotals.SingleAsync(cmd, ct);
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
        return await Registry.ListAsync(cmd, ct);
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
        return await Gpus.ListAsync(cmd, ct);
    }

    // The row mappings of this class's statements (Sql/workers.sql), one per statement.

    /// <summary>This process's clock minus the database's, in milliseconds, as the statement measured it.</summary>
    private static readonly RowMap<double> ClockOffset = new("WorkerRegister", ClockOffsetColumn);

    /// <summary>As <see cref="ClockOffset"/>; no row when the registry row is gone.</summary>
    private static readonly RowMap<double?> BeatClockOffset = new("WorkerHeartbeat", c =>
    {
        var offset = ClockOffsetColumn(c);
        return r => offset(r);
    });

    private static Func<Row, double> ClockOffsetColumn(ResultColumns c)
    {
        var offset = c.Column<double>("clock_offset_ms");
        return r => r.Get(offset);
    }

    private static readonly RowMap<(long Claims, double Seconds, double? MaxMs, double? LastMs)> ClaimLatencyTotals = new("WorkerClaimLatency", c =>
    {
        var claims = c.Column<long>("claims");
        var seconds = c.Column<double>("claim_seconds");
        var maxMs = c.Column<double?>("claim_max_ms");
        var lastMs = c.Column<double?>("claim_last_ms");
        return r => (r.Get(claims), r.Get(seconds), r.Get(maxMs), r.Get(lastMs));
    });

    private static readonly RowMap<WorkerRow> Registry = new("WorkerList", c =>
    {
        var id = c.Column<string>("id");
        var node = c.Column<string>("node");
        var pid = c.Column<int>("pid");
        var slot = c.Column<int>("slot");
        var gpuIndex = c.NullableColumn<string>("gpu_index");
        var gpuUuid = c.NullableColumn<string>("gpu_uuid");
        var gpuName = c.NullableColumn<string>("gpu_name");
        var provider = c.Column<string>("execution_provider");
        var threads = c.Column<int>("threads");
        var version = c.Column<string>("version");
        var state = c.Column<string>("state");
        var startedAt = c.Column<DateTime>("started_at");
        var heartbeatAt = c.Column<DateTime>("heartbeat_at");
        var stoppedAt = c.Column<DateTime?>("stopped_at");
        var currentShard = c.Column<long?>("current_shard");
        var shardsCompleted = c.Column<int>("shards_completed");
        var audioDone = c.Column<double>("audio_seconds_done");
        var lastRate = c.Column<double?>("last_rate");
        var detail = c.NullableColumn<string>("detail");
        var claims = c.Column<long>("claims");
        var claimSeconds = c.Column<double>("claim_seconds");
        var claimLastMs = c.Column<double?>("claim_last_ms");
        var claimMaxMs = c.Column<double?>("claim_max_ms");
        var heartbeatAge = c.Column<TimeSpan>("heartbeat_age");
        var clockOffsetMs = c.Column<double?>("clock_offset_ms");
        var clockCheckedAt = c.Column<DateTime?>("clock_checked_at");
        return r => new WorkerRow(r.Get(id), r.Get(node), r.Get(pid), r.Get(slot), r.Get(gpuIndex), r.Get(gpuUuid), r.Get(gpuName), r.Get(provider),
            r.Get(threads), r.Get(version), r.Get(state), r.Get(startedAt), r.Get(heartbeatAt), r.Get(stoppedAt),
            r.Get(currentShard), r.Get(shardsCompleted), r.Get(audioDone), r.Get(lastRate), r.Get(detail),
            r.Get(claims), r.Get(claimSeconds), r.Get(claimLastMs), r.Get(claimMaxMs),
            r.Get(heartbeatAge), r.Get(clockOffsetMs), r.Get(clockCheckedAt));
    });

    private static readonly RowMap<GpuSample> Gpus = new("GpuTelemetryList", c =>
    {
        var node = c.Column<string>("node");
        var index = c.Column<int>("gpu_index");
        var uuid = c.Column<string>("gpu_uuid");
        var name = c.Column<string>("gpu_name");
        var util = c.Column<double?>("utilization_percent");
        var memUsed = c.Column<double?>("memory_used_mb");
        var memTotal = c.Column<double?>("memory_total_mb");
        var temp = c.Column<double?>("temperature_c");
        var sampledAt = c.Column<DateTime>("sampled_at");
        return r => new GpuSample(r.Get(node), r.Get(index), r.Get(uuid), r.Get(name), r.Get(util), r.Get(memUsed), r.Get(memTotal), r.Get(temp),
            r.Get(sampledAt));
    });
}
