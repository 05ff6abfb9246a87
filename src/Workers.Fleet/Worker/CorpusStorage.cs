using Workers.Postgres.Queue;

namespace Workers.Fleet.Worker;

/// <summary>The corpus's storage is not there (an unmounted network share, a renamed folder): the
/// attempt fails and is retried later instead of recording every file of the shard as failed.</summary>
public sealed class CorpusStorageUnavailableException(string message) : IOException(message);

/// <summary>
/// Tells "these files are broken" from "the storage is gone" before a shard is processed. When not
/// one folder holding the shard's files exists (nor, for relative paths, the corpus root), the
/// files cannot be judged: failing them one by one would mark a whole shard's audio as bad because
/// a mount dropped. The shard fails instead, with a message naming the folder, and the queue's
/// retry (or a re-run from the dashboard once the storage is back) processes it. When at least one
/// folder exists, missing files are ordinary per-file failures.
/// </summary>
public static class CorpusStorage
{
    public static void EnsureReachable(IReadOnlyList<ShardItem> items)
    {
        if (items.Count == 0) return;
        // Items of a folder come together, so the usual shard is judged by its first folder: each
        // folder is asked once, and the search stops at the first one there.
        var folders = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            if (Path.GetDirectoryName(item.FullPath) is { Length: > 0 } dir && folders.Add(dir) && Directory.Exists(dir)) return;
        }
        var root = items[0].RootDir;
        if (!Path.IsPathRooted(items[0].Path) && Directory.Exists(root)) return;
        var shown = Path.IsPathRooted(items[0].Path) ? folders.Order(StringComparer.Ordinal).First() : root;
        throw new CorpusStorageUnavailableException(
            $"corpus storage unavailable: '{shown}' does not exist (nor does any other folder of this shard's {items.Count} item(s)). " +
            "Is the share mounted on this node? The shard is retried while it has attempts left; once the storage is back, re-run dead shards from the dashboard (Failures) or with `workers rerun CORPUS --failed`.");
    }
}
