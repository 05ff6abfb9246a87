using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Workers.Onnx;

/// <summary>sha256 of files, remembered per (path, length, modification time) so verifying the same
/// 45 MB library again on every session start costs a stat, not a hash. Every pinned file (models,
/// the runtime, a stage's am.mvn and token list) is checked through it.</summary>
public static class FileHashes
{
    private static readonly ConcurrentDictionary<string, (long Length, DateTime Modified, string Sha256)> Known = new(StringComparer.Ordinal);

    /// <summary>The file's sha256, lower-case hex.</summary>
    public static string Sha256(string path)
    {
        var info = new FileInfo(path);
        if (Known.TryGetValue(path, out var k) && k.Length == info.Length && k.Modified == info.LastWriteTimeUtc) return k.Sha256;
        string hash;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan))
        {
            hash = Convert.ToHexStringLower(SHA256.HashData(stream));
        }
        Known[path] = (info.Length, info.LastWriteTimeUtc, hash);
        return hash;
    }

    /// <summary>Hash <paramref name="path"/> again next time (it is being replaced).</summary>
    public static void Forget(string path) => Known.TryRemove(path, out _);
}
