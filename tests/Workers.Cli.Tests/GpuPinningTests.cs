using System.Text.RegularExpressions;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>
/// `workers run --gpus ... --per-gpu N` (issue "Fleet", item 1): real worker processes against a
/// real PostgreSQL, with a fake nvidia-smi reporting two GPUs, so no GPU is needed. Each worker
/// logs the pin it actually sees, which is what these tests check from the outside.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed partial class GpuPinningTests(PostgresFixture pg) : IDisposable
{
    private const string UuidA = "GPU-5b3c1f2a-0000-4000-8000-00000000000a";
    private const string UuidB = "GPU-5b3c1f2a-0000-4000-8000-00000000000b";

    private readonly string _dir = Directory.CreateTempSubdirectory("workers-gpu-pinning-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task Two_gpus_with_two_workers_each_start_four_workers_each_pinned_to_its_gpu()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var bin = FakeNvidiaSmi("bin", $"0, {UuidA}, NVIDIA H100 80GB HBM3, 81559 MiB", $"1, {UuidB}, NVIDIA H100 80GB HBM3, 81559 MiB");
        var corpus = Path.Combine(_dir, "corpus");
        for (var i = 0; i < 6; i++) TestAudio.WriteWav(Path.Combine(corpus, $"u{i}.wav"), 5);
        var env = Env(db);
        env["PATH"] = Path.GetDirectoryName(bin) + ":" + Environment.GetEnvironmentVariable("PATH"); // the default "nvidia-smi" is found on PATH
        var enq = await WorkersProcess.RunAsync(env, "enqueue", corpus, "--name", "pinned", "--shard-minutes", "0.1");
        Assert.True(enq.ExitCode == 0, enq.ToString());

        var run = await WorkersProcess.RunAsync(env, "run", "--gpus", "auto", "--per-gpu", "2", "--until-idle");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"GPU 0: NVIDIA H100 80GB HBM3 ({UuidA}, 81559 MiB)", run.StdErr);
        var started = WorkerStarted().Matches(run.StdErr)
            .Select(m => (Slot: m.Groups["slot"].Value, Gpu: m.Groups["gpu"].Value, Uuid: m.Groups["uuid"].Value, Cuda: m.Groups["cuda"].Value))
            .OrderBy(w => w.Slot).ToList();
        Assert.True(started.Count == 4, run.ToString());
        Assert.Equal([("0", "0", UuidA, "0"), ("1", "0", UuidA, "0"), ("2", "1", UuidB, "1"), ("3", "1", UuidB, "1")], started);
        Assert.DoesNotContain("starting on CPU", run.StdErr); // GPUs found: no CPU worker by default
        Assert.Contains("falling back to CPU", run.StdErr); // GPU slots asked for CUDA (auto); this machine's library has none

        var shards = await db.ScalarAsync<long>("SELECT count(*) FROM shards");
        Assert.True(shards >= 4, $"only {shards} shards");
        Assert.Equal(shards, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'succeeded'"));
        // Every attempt records the GPU index its worker was pinned to.
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE gpu IS NULL OR gpu NOT IN ('0', '1')"));
        // The registry shows the four workers, two per GPU, with uuids, and that these GPU slots run on CPU.
        Assert.Equal("0:" + UuidA + ",0:" + UuidA + ",1:" + UuidB + ",1:" + UuidB, await db.ScalarAsync<string>(
            "SELECT string_agg(gpu_index || ':' || gpu_uuid, ',' ORDER BY slot) FROM workers"));
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM workers WHERE execution_provider = 'CPUExecutionProvider' AND state = 'stopped'"));
    }

    [Fact]
    public async Task A_listed_gpu_that_does_not_exist_is_refused_with_the_gpus_found()
    {
        await using var db = await pg.CreateSchemaAsync();
        var env = Env(db);
        env["Fleet__NvidiaSmi"] = FakeNvidiaSmi("smi", $"0, {UuidA}, NVIDIA H100 80GB HBM3, 81559 MiB", $"1, {UuidB}, NVIDIA H100 80GB HBM3, 81559 MiB");
        var run = await WorkersProcess.RunAsync(env, "run", "--gpus", "0,2", "--until-idle");
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains($"error: --gpus 0,2: GPU 2 not found. nvidia-smi reports: 0: NVIDIA H100 80GB HBM3 ({UuidA}, 81559 MiB); 1: NVIDIA H100 80GB HBM3 ({UuidB}, 81559 MiB).", run.StdErr);
        Assert.DoesNotContain("Worker slot", run.StdErr);
    }

    [Fact]
    public async Task Auto_without_nvidia_smi_and_no_cpu_workers_refuses_with_nothing_to_run()
    {
        await using var db = await pg.CreateSchemaAsync();
        var env = Env(db);
        env["Fleet__NvidiaSmi"] = Path.Combine(_dir, "missing", "nvidia-smi");
        var run = await WorkersProcess.RunAsync(env, "run", "--cpu-workers", "0", "--until-idle");
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains("GPUs: none found:", run.StdErr);
        Assert.Contains("error: Nothing to run: no GPUs (", run.StdErr);
        Assert.Contains("--cpu-workers 0", run.StdErr);
    }

    [Fact]
    public async Task Gpus_none_runs_one_cpu_worker_that_sees_no_gpu_and_uses_the_cpu_provider()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var env = Env(db);
        env["Fleet__NvidiaSmi"] = FakeNvidiaSmi("never", "0, GPU-x, should not be asked, 1 MiB");
        var run = await WorkersProcess.RunAsync(env, "run", "--gpus", "none", "--until-idle");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("Worker slot 0 starting on CPU; CUDA_VISIBLE_DEVICES=''", run.StdErr);
        Assert.DoesNotContain("Worker slot 1", run.StdErr);
        Assert.Contains("provider CPUExecutionProvider", run.StdErr);
        Assert.DoesNotContain("falling back to CPU", run.StdErr); // cpu by intent, not a failed CUDA attempt
    }

    private Dictionary<string, string?> Env(TestSchema db) => new()
    {
        ["ConnectionStrings__Workers"] = db.ConnectionString,
        ["Models__Root"] = Models.Root,
        ["Fleet__TempRoot"] = Path.Combine(_dir, ".tmp"),
        ["Queue__PollSeconds"] = "1",
    };

    /// <summary>An executable `nvidia-smi` in its own folder that prints <paramref name="rows"/>.</summary>
    private string FakeNvidiaSmi(string folder, params string[] rows)
    {
        var path = Path.Combine(_dir, folder, "nvidia-smi");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "#!/bin/sh\ncat <<'EOF'\n" + string.Join("\n", rows) + "\nEOF\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    [GeneratedRegex(@"Worker slot (?<slot>\d+) starting on GPU (?<gpu>\d+) \((?<uuid>GPU-[0-9a-f-]+), NVIDIA H100 80GB HBM3\); CUDA_VISIBLE_DEVICES='(?<cuda>[^']*)'")]
    private static partial Regex WorkerStarted();
}
