using System.Text.Json;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>
/// `workers status --fleet` and the supervisor's GPU telemetry (issue "Fleet", item 2): real
/// processes against a real PostgreSQL, with a fake nvidia-smi answering both the GPU list and the
/// telemetry query for two GPUs, so no GPU is needed.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class FleetStatusTests(PostgresFixture pg) : IDisposable
{
    private const string UuidA = "GPU-5b3c1f2a-0000-4000-8000-00000000000a";
    private const string UuidB = "GPU-5b3c1f2a-0000-4000-8000-00000000000b";

    private readonly string _dir = Directory.CreateTempSubdirectory("workers-fleet-status-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task Run_samples_both_gpus_and_status_fleet_json_lists_them_and_the_workers()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var corpus = Path.Combine(_dir, "corpus");
        for (var i = 0; i < 4; i++) TestAudio.WriteWav(Path.Combine(corpus, $"u{i}.wav"), 5);
        var env = Env(db);
        env["Fleet__NvidiaSmi"] = FakeNvidiaSmi();
        var enq = await WorkersProcess.RunAsync(env, "enqueue", corpus, "--name", "fleet", "--shard-minutes", "0.1");
        Assert.True(enq.ExitCode == 0, enq.ToString());

        var run = await WorkersProcess.RunAsync(env, "run", "--gpus", "auto", "--per-gpu", "1", "--until-idle");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.DoesNotContain("GPU telemetry: sample failed", run.StdErr);

        var status = await WorkersProcess.RunAsync(env, "status", "--fleet", "--json");
        Assert.True(status.ExitCode == 0, status.ToString());
        using var doc = JsonDocument.Parse(status.StdOut);
        var gpus = doc.RootElement.GetProperty("gpus").EnumerateArray().ToList();
        Assert.Equal(2, gpus.Count);
        AssertGpu(gpus[0], 0, UuidA, 87, 40960, 81559, 64);
        AssertGpu(gpus[1], 1, UuidB, null, 1024, 81559, 31); // utilization [N/A]
        Assert.All(gpus, g => Assert.InRange(g.GetProperty("sample_age_seconds").GetDouble(), 0, 600));

        // The worker processes register themselves: one row per GPU slot, stopped cleanly after --until-idle.
        var workers = doc.RootElement.GetProperty("workers").EnumerateArray().ToList();
        Assert.True(workers.Count == 2, status.StdOut);
        Assert.Equal(["0", "1"], workers.Select(w => w.GetProperty("gpu_index").GetString()).Order());
        Assert.All(workers, w =>
        {
            Assert.Equal("node-fleet", w.GetProperty("node").GetString());
            Assert.Equal("stopped", w.GetProperty("state").GetString());
            // This machine's library has no CUDA: each GPU slot fell back to CPU, which is what the flag is for.
            Assert.Equal(w.GetProperty("execution_provider").GetString() != "CUDAExecutionProvider", w.GetProperty("gpu_slot_on_cpu").GetBoolean());
        });
        Assert.Equal(await db.ScalarAsync<long>("SELECT count(*) FROM shards"), workers.Sum(w => w.GetProperty("shards_completed").GetInt32()));
    }

    [Fact]
    public async Task Status_fleet_flags_a_stale_worker_and_a_gpu_slot_on_cpu()
    {
        await using var db = await pg.CreateSchemaAsync();
        await Exec(db, """
            INSERT INTO workers (id, node, pid, slot, gpu_index, gpu_uuid, gpu_name, execution_provider, threads, version, queues,
                                 state, started_at, heartbeat_at, current_shard, shards_completed, audio_seconds_done, last_rate, clock_offset_ms)
            VALUES ('n1/100/0', 'n1', 100, 0, '0', 'GPU-a', 'NVIDIA H100', 'CPUExecutionProvider', 4, '0.1.0', '{default}',
                    'running', now() - interval '1 hour', now() - interval '10 minutes', 42, 3, 7200, 55.5, 180250),
                   ('n1/101/1', 'n1', 101, 1, '1', 'GPU-b', 'NVIDIA H100', 'CUDAExecutionProvider', 4, '0.1.0', '{default}',
                    'running', now() - interval '1 hour', now(), NULL, 0, 0, NULL, 12),
                   ('n1/99/0', 'n1', 99, 0, NULL, NULL, NULL, 'CPUExecutionProvider', 4, '0.1.0', '{default}',
                    'stopped', now() - interval '5 hours', now() - interval '4 hours', NULL, 9, 1, 2, NULL)
            """);
        await Exec(db, """
            INSERT INTO gpu_telemetry VALUES ('n1', 0, 'GPU-a', 'NVIDIA H100', 3, 500, 81559, 40, now() - interval '30 seconds')
            """);
        var env = Env(db);

        var human = await WorkersProcess.RunAsync(env, "status", "--fleet");
        Assert.True(human.ExitCode == 0, human.ToString());
        var lines = human.StdOut.Split('\n');
        var stale = Assert.Single(lines, l => l.Contains("n1/100/0"));
        Assert.Contains("stale", stale);
        Assert.Contains("GPU SLOT ON CPU", stale);
        Assert.Contains("2.00", stale); // audio hours
        Assert.Contains("55.5x", stale);
        Assert.Contains("+180.3 s SKEWED", stale); // issue 11: the clock offset, beyond Queue:ClockSkewWarnSeconds
        var fresh = Assert.Single(lines, l => l.Contains("n1/101/1"));
        Assert.Contains("running", fresh);
        Assert.DoesNotContain("GPU SLOT ON CPU", fresh);
        Assert.Matches(@"\s0\.0 s\s", fresh); // 12 ms
        Assert.DoesNotContain("SKEWED", fresh);
        Assert.DoesNotContain("n1/99/0", human.StdOut); // stopped over an hour ago
        Assert.Contains(lines, l => l.Contains("NVIDIA H100") && l.Contains("3%") && l.Contains("500 / 81,559 MiB") && l.Contains("40 C"));

        var json = await WorkersProcess.RunAsync(env, "status", "--fleet", "--json");
        Assert.True(json.ExitCode == 0, json.ToString());
        using var doc = JsonDocument.Parse(json.StdOut);
        var workers = doc.RootElement.GetProperty("workers").EnumerateArray().ToDictionary(w => w.GetProperty("id").GetString()!);
        Assert.Equal(2, workers.Count);
        Assert.Equal("stale", workers["n1/100/0"].GetProperty("state").GetString());
        Assert.Equal("running", workers["n1/100/0"].GetProperty("registered_state").GetString());
        Assert.True(workers["n1/100/0"].GetProperty("gpu_slot_on_cpu").GetBoolean());
        Assert.InRange(workers["n1/100/0"].GetProperty("heartbeat_age_seconds").GetDouble(), 590, 700);
        Assert.Equal(42, workers["n1/100/0"].GetProperty("current_shard").GetInt64());
        Assert.Equal(180250, workers["n1/100/0"].GetProperty("clock_offset_ms").GetDouble());
        Assert.Equal(2.0, workers["n1/100/0"].GetProperty("audio_hours").GetDouble());
        Assert.Equal("running", workers["n1/101/1"].GetProperty("state").GetString());
        Assert.False(workers["n1/101/1"].GetProperty("gpu_slot_on_cpu").GetBoolean());
        var gpu = Assert.Single(doc.RootElement.GetProperty("gpus").EnumerateArray());
        AssertGpu(gpu, 0, "GPU-a", 3, 500, 81559, 40);
        Assert.InRange(gpu.GetProperty("sample_age_seconds").GetDouble(), 25, 120);
    }

    [Fact]
    public async Task Status_fleet_with_a_corpus_is_refused()
    {
        await using var db = await pg.CreateSchemaAsync();
        var r = await WorkersProcess.RunAsync(Env(db), "status", "some-corpus", "--fleet");
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("--fleet lists workers and GPUs", r.StdErr);
    }

    private static void AssertGpu(JsonElement g, int index, string uuid, double? util, double used, double total, double temp)
    {
        Assert.Equal(index, g.GetProperty("index").GetInt32());
        Assert.Equal(uuid, g.GetProperty("uuid").GetString());
        if (util is null) Assert.Equal(JsonValueKind.Null, g.GetProperty("utilization_percent").ValueKind);
        else Assert.Equal(util, g.GetProperty("utilization_percent").GetDouble());
        Assert.Equal(used, g.GetProperty("memory_used_mb").GetDouble());
        Assert.Equal(total, g.GetProperty("memory_total_mb").GetDouble());
        Assert.Equal(temp, g.GetProperty("temperature_c").GetDouble());
    }

    private static async Task Exec(TestSchema db, string sql)
    {
        await using var cmd = db.DataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }

    private Dictionary<string, string?> Env(TestSchema db) => new()
    {
        ["ConnectionStrings__Workers"] = db.ConnectionString,
        ["Models__Root"] = Models.Root,
        ["Fleet__TempRoot"] = Path.Combine(_dir, ".tmp"),
        ["Fleet__NodeName"] = "node-fleet",
        ["Queue__PollSeconds"] = "1",
    };

    /// <summary>An executable `nvidia-smi` answering the GPU list and the telemetry query for two GPUs.</summary>
    private string FakeNvidiaSmi()
    {
        var path = Path.Combine(_dir, "bin", "nvidia-smi");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, $$"""
            #!/bin/sh
            case "$1" in
            --query-gpu=index,uuid,name,memory.total)
                echo '0, {{UuidA}}, NVIDIA H100 80GB HBM3, 81559 MiB'
                echo '1, {{UuidB}}, NVIDIA H100 80GB HBM3, 81559 MiB'
                ;;
            --query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total,temperature.gpu)
                echo '0, {{UuidA}}, NVIDIA H100 80GB HBM3, 87, 40960, 81559, 64'
                echo '1, {{UuidB}}, NVIDIA H100 80GB HBM3, [N/A], 1024, 81559, 31'
                ;;
            *)
                echo "unexpected arguments: $*" >&2
                exit 9
                ;;
            esac

            """);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }
}
