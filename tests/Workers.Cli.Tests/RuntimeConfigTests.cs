using System.Text.Json;

namespace Workers.Cli.Tests;

/// <summary>The runtime settings every <c>workers</c> process starts with (workers.runtimeconfig.json, from Workers.Cli.csproj).</summary>
public sealed class RuntimeConfigTests
{
    [Fact]
    public void Workers_processes_run_without_dynamic_pgo()
    {
        // Beside the workers.dll the supervisor starts its worker processes from (RunCommand.Self).
        var path = Path.ChangeExtension(typeof(Workers.Cli.Commands.RunCommand).Assembly.Location, ".runtimeconfig.json");
        using var config = JsonDocument.Parse(File.ReadAllText(path));
        var properties = config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
        Assert.True(properties.TryGetProperty("System.Runtime.TieredPGO", out var pgo), $"{path} does not set System.Runtime.TieredPGO");
        Assert.False(pgo.GetBoolean());
    }
}
