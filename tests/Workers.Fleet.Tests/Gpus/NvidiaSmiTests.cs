using Workers.Fleet.Gpus;

namespace Workers.Fleet.Tests.Gpus;

/// <summary>Reading nvidia-smi's GPU list (issue "Fleet", item 1).</summary>
public sealed class NvidiaSmiTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-nvidia-smi-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void Parses_rows_with_spaces_units_and_a_trailing_newline()
    {
        var (gpus, skipped) = NvidiaSmi.Parse(
            "0, GPU-5b3c1f2a-0000-1111-2222-333344445555, NVIDIA H100 80GB HBM3, 81559 MiB\n" +
            "1, GPU-aaaa, NVIDIA H100 80GB HBM3, 81559 MiB\r\n");
        Assert.Empty(skipped);
        Assert.Equal(
            [new GpuInfo(0, "GPU-5b3c1f2a-0000-1111-2222-333344445555", "NVIDIA H100 80GB HBM3", 81559), new GpuInfo(1, "GPU-aaaa", "NVIDIA H100 80GB HBM3", 81559)],
            gpus);
    }

    [Fact]
    public void Keeps_a_name_with_a_comma_and_memory_not_available()
    {
        var (gpus, _) = NvidiaSmi.Parse("3,GPU-x,Odd, Name Inc,[N/A]");
        Assert.Equal(new GpuInfo(3, "GPU-x", "Odd, Name Inc", null), Assert.Single(gpus));
    }

    [Fact]
    public void Skips_a_header_a_message_and_duplicate_indices_and_says_so()
    {
        var (gpus, skipped) = NvidiaSmi.Parse(
            "index, uuid, name, memory.total [MiB]\n\n0, GPU-a, A100, 40960 MiB\n0, GPU-b, A100, 40960 MiB\nNo devices were found\n");
        Assert.Equal("GPU-a", Assert.Single(gpus).Uuid);
        Assert.Equal(["index, uuid, name, memory.total [MiB]", "0, GPU-b, A100, 40960 MiB", "No devices were found"], skipped);
    }

    [Fact]
    public async Task A_missing_executable_means_no_gpus_with_the_reason()
    {
        var r = await NvidiaSmi.QueryAsync(Path.Combine(_dir, "no-such-nvidia-smi"), CancellationToken.None);
        Assert.Empty(r.Gpus);
        Assert.Contains("no-such-nvidia-smi could not be started", r.Problem);
    }

    [Fact]
    public async Task A_failing_nvidia_smi_means_no_gpus_with_its_exit_code_and_message()
    {
        var smi = Script("echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2; exit 9");
        var r = await NvidiaSmi.QueryAsync(smi, CancellationToken.None);
        Assert.Empty(r.Gpus);
        Assert.Equal($"{smi} exited with code 9: NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.", r.Problem);
    }

    [Fact]
    public async Task Runs_the_query_nvidia_smi_documents_and_reads_its_answer()
    {
        var args = Path.Combine(_dir, "args");
        var smi = Script($"echo \"$@\" > '{args}'; echo '0, GPU-a, NVIDIA L4, 23034 MiB'; echo '1, GPU-b, NVIDIA L4, 23034 MiB'");
        var r = await NvidiaSmi.QueryAsync(smi, CancellationToken.None);
        Assert.Null(r.Problem);
        Assert.Equal([0, 1], r.Gpus.Select(g => g.Index));
        Assert.Equal("--query-gpu=index,uuid,name,memory.total --format=csv,noheader", File.ReadAllText(args).Trim());
    }

    private string Script(string body)
    {
        var path = Path.Combine(_dir, "nvidia-smi-" + Guid.NewGuid().ToString("N")[..6]);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }
}
