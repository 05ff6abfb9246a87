using Workers.Audio;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Dashboard.Api;
using Workers.Postgres.Corpora;
using Workers.Postgres.Dashboard;

namespace Workers.Dashboard.Enqueue;

/// <summary>What the enqueue form or <c>POST /api/enqueue</c> asks for, as typed (the path is not checked yet).</summary>
public sealed record EnqueueInput(string? Path, string? Name, double ShardMinutes = 30, string Pipeline = "vad", string Queue = "default", int Priority = 0);

/// <summary>A plan that was made (and, when <see cref="CorpusId"/> is set, written).</summary>
public sealed record EnqueueOutcome(string Name, ConfinedFolder Folder, EnqueueInput Input, EnqueuePlan Plan,
    double FleetRate, double? EstimatedSeconds, long? CorpusId);

/// <summary>
/// The dashboard's enqueue: the path (a folder, or a JSONL manifest listing files in its own folder)
/// confined to Corpus:AllowedRoots, then exactly what
/// `workers enqueue` does (EnqueueSettings rules, EnqueuePlanner.PlanSourceAsync with the
/// AudioDurationProbe, CorpusWriter). A preview writes nothing and gives up after
/// Corpus:ScanTimeoutSeconds; a confirm scans again (files may have changed since the preview) and
/// writes the corpus and its audit row in one transaction. From the page, a confirm runs as the
/// Hangfire job <see cref="EnqueueJob"/>, with no time limit: cancelling it before the commit writes nothing.
/// </summary>
/// <param name="probe">The <see cref="AudioDurationProbe"/> `workers enqueue` uses (registered in DashboardApp).</param>
public sealed class DashboardEnqueue(DashboardHost host, DashboardReader reader, CorpusStatusReader corpora, IDurationProbe probe)
{
    public const string OffMessage =
        "Enqueueing from the dashboard is off: no Corpus:AllowedRoots are configured. To turn it on, list the folders corpora may come from, " +
        "e.g. the environment variable Corpus__AllowedRoots__0=/data/corpora (or \"Corpus\": {\"AllowedRoots\": [\"/data/corpora\"]} in appsettings.json), " +
        "and restart `workers serve`. Until then use `workers enqueue PATH` on a shell.";

    private readonly PathConfinement? _confinement = host.Corpus.Enabled ? new PathConfinement(host.Corpus.AllowedRoots) : null;

    public CorpusOptions Options => host.Corpus;
    public bool Enabled => _confinement is not null;
    public IReadOnlyList<string> Pipelines => host.Pipelines;

    /// <summary>Scans, probes and plans within Corpus:ScanTimeoutSeconds; writes nothing.</summary>
    public Task<EnqueueOutcome> PreviewAsync(EnqueueInput input, CancellationToken ct) => PlanAsync(input, write: null, host.Corpus.ScanTimeout, null, ct);

    /// <summary>
    /// The instant checks of a confirm (the path confined and existing, the settings valid, the name
    /// free), with the name filled in; throws <see cref="ApiException"/> as the preview does.
    /// </summary>
    public async Task<EnqueueInput> CheckAsync(EnqueueInput input, CancellationToken ct)
    {
        var (_, settings, name) = Settle(input);
        await ThrowIfTakenAsync(name, ct);
        return input with { Name = name, ShardMinutes = settings.ShardMinutes };
    }

    /// <summary>
    /// Scans again and writes the corpus; the audit row commits with it. <paramref name="scanTimeout"/>
    /// bounds the scan (null: none, as in the job); <paramref name="progress"/> hears each phase.
    /// </summary>
    public Task<EnqueueOutcome> ConfirmAsync(EnqueueInput input, Actor actor, AuditLog audit, TimeSpan? scanTimeout, IProgress<string>? progress,
        CancellationToken ct) =>
        PlanAsync(input, (plan, folder, name, ct) => new CorpusWriter(host.Database, host.Time).WriteAsync(plan,
            new EnqueueRequest(name, input.Pipeline, input.Queue, input.Priority, host.Queue.MaxAttempts), ct,
            (conn, tx, id, ct) => audit.WriteAsync(conn, tx, actor, "corpus.enqueue", "corpus:" + name, plan.ShardCount,
                $"{folder.RealPath}: {plan.FileCount} files, {plan.AudioSeconds / 3600:0.###} h, {plan.FailedFiles.Count} failed files, " +
                $"queue {input.Queue}, pipeline {input.Pipeline}, priority {input.Priority}", ct)), scanTimeout, progress, ct);

    private (ConfinedFolder Folder, EnqueueSettings Settings, string Name) Settle(EnqueueInput input)
    {
        if (_confinement is null) throw new ApiException(403, OffMessage);
        var folder = Confine(_confinement, input.Path);
        var settings = new EnqueueSettings(string.IsNullOrWhiteSpace(input.Name) ? null : input.Name.Trim(), input.ShardMinutes,
            input.Pipeline, input.Queue, input.Priority);
        var name = settings.CorpusName(folder.FullPath);
        var problems = settings.Validate(name, host.Pipelines, f => f);
        if (problems.Count > 0) throw new ApiException(400, string.Join(" ", problems));
        return (folder, settings, name);
    }

    /// <summary>
    /// A folder (<see cref="PathConfinement.Resolve"/>), or a JSONL manifest: a regular file named
    /// <c>*.jsonl</c> (not a symlink) in a folder that passes the same confinement. Its
    /// <see cref="ConfinedFolder.RealPath"/> is then the manifest's.
    /// </summary>
    private static ConfinedFolder Confine(PathConfinement confinement, string? requested)
    {
        var trimmed = requested?.Trim();
        if (trimmed is null || !trimmed.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)) return confinement.Resolve(requested);
        var dir = Path.GetDirectoryName(trimmed);
        var folder = confinement.Resolve(string.IsNullOrEmpty(dir) ? "." : dir);
        var name = Path.GetFileName(trimmed);
        var real = Path.Combine(folder.RealPath, name);
        if (Directory.Exists(real)) return confinement.Resolve(requested); // a folder that happens to be named *.jsonl
        var info = new FileInfo(real);
        if (info.LinkTarget is not null)
            throw new ApiException(400, $"'{requested}' is a symlink. Give the manifest file itself (a symlink may lead outside the allowed corpus roots).");
        if (!info.Exists)
            throw new ApiException(400, $"Manifest '{requested}' does not exist in {folder.RealPath}. Check the spelling; relative paths start at {confinement.Roots[0]}.");
        return new ConfinedFolder(requested!, Path.Combine(folder.FullPath, name), real, folder.Root);
    }

    /// <summary>
    /// Reads a manifest (durations trusted, nothing probed) and refuses one that lists files outside
    /// its own folder: from the dashboard, only what lies under Corpus:AllowedRoots may be enqueued.
    /// </summary>
    private async Task<EnqueuePlan> PlanManifestAsync(ConfinedFolder manifest, double targetSeconds, CancellationToken ct)
    {
        var listing = ManifestReader.Read(manifest.RealPath, host.Corpus.Limits);
        // ManifestReader stores a file inside the manifest's folder relative to it, any other absolute.
        var outside = listing.Files.Where(f => Path.IsPathRooted(f.Path)).Select(f => f.Path).Take(3).ToList();
        if (outside.Count > 0)
            throw new ApiException(400,
                $"Manifest '{manifest.Requested}' lists files outside its folder {Path.GetDirectoryName(manifest.RealPath)} (e.g. {string.Join(", ", outside.Select(p => $"'{p}'"))}); " +
                "nothing was written. From the dashboard a manifest may list only files in its own folder and below (which lies under Corpus:AllowedRoots): " +
                "put the manifest in a folder that holds all its files, with paths relative to it, or enqueue it with `workers enqueue` on a shell.");
        return await EnqueuePlanner.PlanAsync(listing, probe, targetSeconds, ct, host.Corpus.Limits);
    }

    private async Task<EnqueueOutcome> PlanAsync(EnqueueInput input, Func<EnqueuePlan, ConfinedFolder, string, CancellationToken, Task<long>>? write,
        TimeSpan? scanTimeout, IProgress<string>? progress, CancellationToken ct)
    {
        var (folder, settings, name) = Settle(input);
        await ThrowIfTakenAsync(name, ct);

        // Probing is the slow part (ffprobe per non-WAV file). A request (preview, JSON API) gives up
        // past Corpus:ScanTimeoutSeconds instead of holding a browser tab for an hour; the job has no limit.
        // The limit runs on the host's clock (TimeProvider), so a test moves past it instead of waiting it out.
        using var limitTimer = scanTimeout is { } limit ? new CancellationTokenSource(limit, host.Time) : null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct, limitTimer?.Token ?? CancellationToken.None);
        progress?.Report($"scanning and probing {folder.RealPath}");
        EnqueuePlan plan;
        try
        {
            plan = File.Exists(folder.RealPath)
                ? await PlanManifestAsync(folder, settings.ShardMinutes * 60, timeout.Token)
                : await EnqueuePlanner.PlanSourceAsync(folder.RealPath, probe, settings.ShardMinutes * 60, timeout.Token, host.Corpus.Limits);
        }
        catch (CorpusSourceException e)
        {
            throw new ApiException(400, e.Message);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new ApiException(400,
                $"Scanning and probing '{folder.RealPath}' took longer than {host.Corpus.ScanTimeoutSeconds} s (Corpus:ScanTimeoutSeconds) and was stopped; nothing was written. " +
                $"Enqueue a folder this large from the dashboard's Enqueue page without a preview (confirm runs as a background job with no time limit), " +
                $"or with `workers enqueue {folder.RealPath}` on a shell, or pick a subfolder.");
        }

        long? id = null;
        if (write is not null)
        {
            progress?.Report($"writing {plan.ShardCount} shards of {plan.FileCount} files ({plan.AudioSeconds / 3600:0.##} h)");
            try { id = await write(plan, folder, name, ct); }
            catch (CorpusExistsException) { throw Taken(name); }
        }
        var fleetRate = await FleetRateAsync(ct);
        return new EnqueueOutcome(name, folder, input with { Name = name }, plan, fleetRate,
            fleetRate > 0 ? plan.AudioSeconds / fleetRate : null, id);
    }

    /// <summary>Audio seconds per wall-clock second the fleet finished over DashboardReader.RateWindow (as /api/corpora reports it),
    /// read alone: the preview needs no per-corpus counts.</summary>
    private async Task<double> FleetRateAsync(CancellationToken ct) =>
        await reader.RecentAudioSecondsAsync(ct) / DashboardReader.RateWindow.TotalSeconds;

    private async Task ThrowIfTakenAsync(string name, CancellationToken ct)
    {
        try { await corpora.GetCorpusAsync(name, ct); }
        catch (CorpusNotFoundException) { return; }
        throw Taken(name);
    }

    private static ApiException Taken(string name) =>
        new(409, $"A corpus named '{name}' already exists. Choose another name (the name field), or look at it on /shards?corpus={Uri.EscapeDataString(name)}.");
}
