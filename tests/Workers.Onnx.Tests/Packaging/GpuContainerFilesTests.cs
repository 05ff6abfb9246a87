namespace Workers.Onnx.Tests.Packaging;

/// <summary>Issue 16: the GPU node's container and the deployments that run it. No image can be built
/// here (no container daemon, no registry for base images), so these read the files for what the
/// issue asks of them.</summary>
public sealed class GpuContainerFilesTests
{
    private static readonly string Ops = Path.Combine(RepositoryPaths.Root, "ops");

    [Fact]
    public void Dockerfile_IsTheGpuPublish_OnCuda13AndCudnn9_WithModelsVerifiedAtBuildTime()
    {
        var lines = File.ReadAllLines(Path.Combine(Ops, "gpu", "Dockerfile"));
        var text = string.Join('\n', lines);

        Assert.Matches(@"ARG CUDA_IMAGE=nvidia/cuda:13\.\d+\.\d+-cudnn-runtime-ubuntu24\.04", text);
        Assert.Contains(lines, l => l.StartsWith("FROM ${CUDA_IMAGE}", StringComparison.Ordinal));
        Assert.Contains("RUN dotnet publish src/Workers.Cli -c Release -r linux-x64 -p:WorkersGpu=true -o /opt/workers", text);
        Assert.Contains("./workers models fetch && ./workers models verify", text);
        Assert.Contains("COPY models/models.json /opt/workers/models/models.json", text);
        Assert.Contains("Inference__ExecutionProvider=cuda", text);
        Assert.Contains(@"ENTRYPOINT [""/opt/workers/workers""]", text);
        // Local build outputs must not leak into the image's restore.
        var ignore = File.ReadAllLines(Path.Combine(Ops, "gpu", "Dockerfile.dockerignore"));
        Assert.Contains("**/bin", ignore);
        Assert.Contains("**/obj", ignore);
    }

    [Fact]
    public void DaemonSet_AndNodeUnit_PointAtTheGpuBuild()
    {
        var daemonSet = File.ReadAllText(Path.Combine(Ops, "k8s", "node-daemonset.yaml"));
        Assert.Contains("image: REGISTRY.example/workers-gpu:VERSION", daemonSet);
        Assert.Contains("ops/gpu/Dockerfile", daemonSet);

        var unit = File.ReadAllText(Path.Combine(Ops, "systemd", "workers-node.service"));
        Assert.Contains("dotnet publish src/Workers.Cli -c Release -r linux-x64 -p:WorkersGpu=true -o /opt/workers", unit);
        Assert.Contains("workers doctor", unit);

        var env = File.ReadAllText(Path.Combine(Ops, "systemd", "workers.env.example"));
        Assert.DoesNotContain("Inference__LibraryPath", env);
    }

    [Fact]
    public void Setup_NoLongerFetchesAnOnnxRuntimeLibraryFromNpm()
    {
        var setup = File.ReadAllText(Path.Combine(Ops, "setup.sh"));
        Assert.DoesNotContain("ONNX Runtime library", setup);
        Assert.Contains("models fetch", setup);
    }
}
