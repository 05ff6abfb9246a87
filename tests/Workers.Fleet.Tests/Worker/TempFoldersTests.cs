using Microsoft.Extensions.Logging.Abstractions;
using Workers.Fleet.Worker;

namespace Workers.Fleet.Tests.Worker;

public sealed class TempFoldersTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("workers-temp-sweep-").FullName;

    public void Dispose() => Directory.Delete(_root, true);

    [Fact]
    public void Folders_of_dead_workers_of_this_node_are_swept_and_live_ones_kept()
    {
        var dead = TempFolders.WorkerFolder(_root, "node a", 2_000_000_000, 3); // no such pid
        var alive = TempFolders.WorkerFolder(_root, "node a", Environment.ProcessId, 1);
        var otherNode = TempFolders.WorkerFolder(_root, "node-b", 2_000_000_000, 0);
        foreach (var d in new[] { dead, alive, otherNode })
        {
            Directory.CreateDirectory(Path.Combine(d, "17-2"));
            File.WriteAllText(Path.Combine(d, "17-2", "partial.f32"), "x");
        }
        Directory.CreateDirectory(Path.Combine(TempFolders.NodeFolder(_root, "node a"), "not-a-worker"));

        Assert.Equal(1, TempFolders.SweepDead(_root, "node a", NullLogger.Instance));

        Assert.False(Directory.Exists(dead));
        Assert.True(Directory.Exists(alive));
        Assert.True(Directory.Exists(otherNode)); // another node's folders are that node's business
        Assert.True(Directory.Exists(Path.Combine(TempFolders.NodeFolder(_root, "node a"), "not-a-worker")));
        Assert.Equal(0, TempFolders.SweepDead(Path.Combine(_root, "missing"), "node a", NullLogger.Instance));
    }

    [Fact]
    public void Free_space_is_measured_even_before_the_temp_root_exists()
    {
        Assert.True(TempFolders.FreeMb(Path.Combine(_root, "not", "yet")) > 0);
    }
}
