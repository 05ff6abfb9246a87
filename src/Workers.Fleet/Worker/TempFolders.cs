using Microsoft.Extensions.Logging;

namespace Workers.Fleet.Worker;

/// <summary>
/// The per-attempt temp layout, <c>TempRoot/&lt;node&gt;/&lt;pid&gt;-&lt;slot&gt;/&lt;shard&gt;-&lt;attempt&gt;/</c>, and the sweep
/// of folders left by workers of this node that died without cleaning up (SIGKILL, OOM killer,
/// power loss). A folder is swept when no process with its pid is alive.
/// </summary>
public static class TempFolders
{
    public static string NodeFolder(string tempRoot, string node) => Path.Combine(tempRoot, Sanitize(node));

    public static string WorkerFolder(string tempRoot, string node, int pid, int slot) => Path.Combine(NodeFolder(tempRoot, node), $"{pid}-{slot}");

    /// <summary>Removes the folders of this node's dead workers; returns how many.</summary>
    public static int SweepDead(string tempRoot, string node, ILogger logger)
    {
        var dir = NodeFolder(tempRoot, node);
        if (!Directory.Exists(dir)) return 0;
        var swept = 0;
        foreach (var worker in Directory.EnumerateDirectories(dir))
        {
            var name = Path.GetFileName(worker);
            var dash = name.IndexOf('-');
            if (dash <= 0 || !int.TryParse(name.AsSpan(0, dash), out var pid)) continue; // not ours
            if (pid == Environment.ProcessId || Directory.Exists($"/proc/{pid}")) continue;
            try
            {
                Directory.Delete(worker, recursive: true);
                swept++;
                logger.LogInformation("Removed temp folder {Folder} of dead worker process {Pid}", worker, pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogWarning("Could not remove temp folder {Folder} of dead worker process {Pid}: {Error}", worker, pid, e.Message);
            }
        }
        return swept;
    }

    /// <summary>Free space where the temp root lives, in MB (the root need not exist yet).</summary>
    public static long FreeMb(string tempRoot)
    {
        var path = Path.GetFullPath(tempRoot);
        while (!Directory.Exists(path) && Path.GetDirectoryName(path) is { } parent) path = parent;
        return new DriveInfo(path).AvailableFreeSpace / (1024 * 1024);
    }

    internal static string Sanitize(string s) => string.Concat(s.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
}
