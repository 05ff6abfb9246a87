using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Workers.Onnx;

/// <summary>sha256 of files, remembered per (path, length, modification time) so verifying the same
/// 45 MB library again on every session start costs a stat, not a hash.</summary>
internal static class FileHashes
{
    private static readonly ConcurrentDictionary<string, (long Length, DateTime Modified, string Sha256)> Known = new(StringComparer.Ordinal);

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

    public static void Forget(string path) => Known.TryRemove(path, out _);
}
