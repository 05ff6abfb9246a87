using System.Globalization;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Primitives;
using Workers.Core.Naming;
using Workers.Core.Queue;
using Workers.Dashboard.Security;
using Workers.Postgres.Corpora;
using Workers.Postgres.Dashboard;
using Workers.Postgres.Fleet;

namespace Workers.Dashboard.Api;

/// <summary>The JSON API (documented in README.md, "Dashboard"). Every action writes an audit row in the transaction of its change.</summary>
public static class ApiEndpoints
{
    /// <summary>A running worker assigned a GPU whose inference runs on CPU (a CUDA provider that failed to load).</summary>
    internal static bool GpuSlotOnCpu(WorkerRow w) => w.State == "running" && w.GpuSlotOnCpu;

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/api/antiforgery", (HttpContext ctx, IAntiforgery af) =>
        {
            var tokens = af.GetAndStoreTokens(ctx);
            return Results.Json(new { header_name = tokens.HeaderName, form_field_name = tokens.FormFieldName, token = tokens.RequestToken }, DashboardApp.Json);
        });

        app.MapGet("/api/corpora", async (DashboardReader reader, StageReader stages, CancellationToken ct) =>
            Results.Json(await CorporaJsonAsync(reader, ct, stages), DashboardApp.Json));

        app.MapGet("/api/shards", async (HttpContext ctx, DashboardReader reader, CorpusStatusReader corpora, CancellationToken ct) =>
        {
            var filter = await ParseFilterAsync(ctx.Request.Query, corpora, ct);
            var page = await reader.ShardsAsync(filter, ct);
            return Results.Json(new
            {
                shards = page,
                limit = filter.Limit,
                // The cursor for the next page; null when this page is the last.
                next_after = page.Count == filter.Limit ? page[^1].Id : (long?)null,
            }, DashboardApp.Json);
        });

        app.MapGet("/api/shards/{id:long}", async (long id, DashboardReader reader, CancellationToken ct) =>
            await reader.ShardAsync(id, ct) is { } d
                ? Results.Json(ShardDetailJson(d), DashboardApp.Json)
                : throw new ApiException(404, $"No shard {id}."));

        app.MapGet("/api/queues", async (DashboardReader reader, CancellationToken ct) =>
            Results.Json(new { paused = await reader.PausedQueuesAsync(ct) }, DashboardApp.Json));

        app.MapGet("/api/fleet", async (WorkerRegistry registry, DashboardHost host, CancellationToken ct) =>
        {
            var now = host.Time.GetUtcNow().UtcDateTime;
            var workers = await registry.ListAsync(ct);
            var gpus = await registry.ListGpusAsync(ct);
            var stale = WorkerRegistry.StaleAfter(host.Queue);
            return Results.Json(new
            {
                stale_after_seconds = stale.TotalSeconds,
                gpu_slots_on_cpu = workers.Count(GpuSlotOnCpu),
                workers = workers.Select(w => WorkerJson(w, stale)),
                gpus = gpus.Select(g => new
                {
                    node = g.Node, index = g.Index, uuid = g.Uuid, name = g.Name, utilization_percent = g.UtilizationPercent,
                    memory_used_mb = g.MemoryUsedMb, memory_total_mb = g.MemoryTotalMb, temperature_c = g.TemperatureC,
                    sampled_at = g.SampledAt, sample_age_seconds = Math.Round((now - g.SampledAt).TotalSeconds, 1),
                }),
            }, DashboardApp.Json);
        });

        app.MapGet("/api/audit", async (HttpContext ctx, DashboardReader reader, CancellationToken ct) =>
        {
            var before = Long(ctx.Request.Query, "before") ?? long.MaxValue;
            var limit = (int)Math.Clamp(Long(ctx.Request.Query, "limit") ?? 100, 1, DashboardReader.MaxPageSize);
            var page = await reader.AuditAsync(before, limit, ct);
            return Results.Json(new { entries = page, next_before = page.Count == limit ? page[^1].Id : (long?)null }, DashboardApp.Json);
        });

        app.MapGet("/api/history", async (HttpContext ctx, HistoryReader history, CancellationToken ct) =>
        {
            var minutes = Long(ctx.Request.Query, "minutes") ?? 60;
            if (minutes < 1)
                throw new ApiException(400, $"minutes must be at least 1 (at most {HistoryReader.MaxMinutes}, one day), not {minutes}.");
            var points = await history.MinutesAsync((int)Math.Min(minutes, HistoryReader.MaxMinutes), ct);
            return Results.Json(new
            {
                bucket_seconds = 60,
                points = points.Select(p => new
                {
                    at = p.At, audio_seconds = p.AudioSeconds, shards_succeeded = p.ShardsSucceeded, attempts_failed = p.AttemptsFailed,
                }),
            }, DashboardApp.Json);
        });

        // Every action below writes its audit row inside the transaction of its change (CorpusAdmin, QueueAdmin).
        app.MapPost("/api/corpora/{name}/rerun-failed", async (string name, HttpContext ctx, CorpusStatusReader corpora, CorpusAdmin admin,
            DashboardHost host, CancellationToken ct) =>
        {
            var corpus = await corpora.GetCorpusAsync(RouteText(name), ct);
            // One UPDATE over the corpus's dead shards (CorpusAdmin / ShardsRerunFailed), however many there are.
            var ids = await admin.RerunFailedAsync(corpus.Id, host.Queue.MaxAttempts,
                new AuditRecord(ActorOf(ctx), "corpus.rerun_failed", "corpus:" + corpus.Name), ct);
            return Done(ctx, new { corpus = corpus.Name, rerun = ids.Count });
        });

        app.MapPost("/api/corpora/{name}/rerun-failed-files", async (string name, HttpContext ctx, CorpusStatusReader corpora, CorpusAdmin admin,
            DashboardHost host, CancellationToken ct) =>
        {
            var corpus = await corpora.GetCorpusAsync(RouteText(name), ct);
            FailedFilesRerun? done;
            try
            {
                done = await admin.RerunFailedFilesAsync(corpus.Id, host.Queue.MaxAttempts,
                    new AuditRecord(ActorOf(ctx), "corpus.rerun_failed_files", "corpus:" + corpus.Name), ct);
            }
            catch (CorpusActionRefusedException e) { throw new ApiException(409, e.Message); }
            if (done is null)
                throw new ApiException(409, $"Corpus '{corpus.Name}' has no files that failed in a succeeded shard: nothing to re-run. " +
                    $"Dead shards are re-run with POST /api/corpora/{corpus.Name}/rerun-failed.");
            return Done(ctx, new { corpus = corpus.Name, files = done.Files, ranges = done.Ranges, shard = done.ShardId });
        });

        app.MapPost("/api/corpora/{name}/cancel", async (string name, HttpContext ctx, CorpusStatusReader corpora, CorpusAdmin admin,
            CancellationToken ct) =>
        {
            var corpus = await corpora.GetCorpusAsync(RouteText(name), ct);
            var n = await admin.CancelAsync(corpus.Id, new AuditRecord(ActorOf(ctx), "corpus.cancel", "corpus:" + corpus.Name), ct);
            return Done(ctx, new { corpus = corpus.Name, cancelled = n });
        });

        app.MapPost("/api/shards/rerun", async (HttpContext ctx, CorpusStatusReader corpora, CorpusAdmin admin, DashboardHost host,
            CancellationToken ct) =>
        {
            var fields = await ActionFieldsAsync(ctx.Request, ct);
            var filter = await ParseFilterAsync(fields, corpora, ct);
            if (filter.State is { } state && state != "dead")
                throw new ApiException(400, $"Only dead shards are re-run by filter; state={state} is not accepted (leave state out).");
            var all = Text(fields, "all") is "1" or "true";
            if (filter.CorpusId is null && filter.Queue is null && !all)
                throw new ApiException(400, "Say which dead shards to re-run: give corpus or queue (node, worker and file narrow it further), " +
                    "or all=1 to re-run every dead shard of every corpus.");
            var target = string.Join(",", new[] { ("corpus", Text(fields, "corpus")), ("queue", filter.Queue), ("node", filter.Node),
                ("worker", filter.Worker), ("file", filter.File) }.Where(f => f.Item2 is not null).Select(f => f.Item1 + "=" + f.Item2));
            // One UPDATE over every matching dead shard (ShardsRerunDeadByFilter), however many there are.
            var ids = await admin.RerunDeadAsync(filter, host.Queue.MaxAttempts,
                new AuditRecord(ActorOf(ctx), "shards.rerun", "shards:" + (target.Length > 0 ? target : "all")), ct);
            return Done(ctx, new { rerun = ids.Count });
        });

        app.MapPost("/api/shards/{id:long}/rerun", async (long id, HttpContext ctx, DashboardReader reader, CorpusAdmin admin,
            DashboardHost host, CancellationToken ct) =>
        {
            var detail = await reader.ShardAsync(id, ct) ?? throw new ApiException(404, $"No shard {id}.");
            var ids = await admin.RerunShardsAsync(detail.Shard.CorpusId, [id], host.Queue.MaxAttempts,
                new AuditRecord(ActorOf(ctx), "shard.rerun", "shard:" + id), ct);
            if (ids.Count == 0)
                throw new ApiException(409, $"Shard {id} is {detail.Shard.State}; only dead, succeeded or cancelled shards can be re-run.");
            return Done(ctx, new { shard = id, rerun = 1 });
        });

        app.MapPost("/api/queues/{queue}/pause", async (string queue, HttpContext ctx, QueueAdmin admin, CancellationToken ct) =>
        {
            queue = Names.CheckedQueue(RouteText(queue), "queue");
            var n = await admin.PauseAsync(queue, ActorOf(ctx), ct);
            return Done(ctx, new { queue, paused = true, changed = n == 1 });
        });

        app.MapPost("/api/queues/{queue}/resume", async (string queue, HttpContext ctx, QueueAdmin admin, CancellationToken ct) =>
        {
            queue = RouteText(queue);
            var n = await admin.ResumeAsync(queue, ActorOf(ctx), ct);
            return Done(ctx, new { queue, paused = false, changed = n == 1 });
        });
    }

    /// <summary>A name from a route segment: ASP.NET decodes every escape in a path segment except
    /// %2F, so a corpus or queue named "team/a" (linked as team%2Fa) would otherwise not be found.
    /// Unambiguous because the name rule (<see cref="Names"/>) keeps '%' out of names.</summary>
    private static string RouteText(string value) => value.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);

    public static async Task<object> CorporaJsonAsync(DashboardReader reader, CancellationToken ct, StageReader? stages = null)
    {
        var corpora = await reader.CorporaAsync(ct);
        var results = stages is null ? new Dictionary<long, long>() : await stages.ResultsPerCorpusAsync(ct);
        var unservable = stages is null ? [] : await stages.UnservableAsync(ct);
        var paused = await reader.PausedQueuesAsync(ct);
        var window = DashboardReader.RateWindow.TotalSeconds;
        var fleetRate = corpora.Sum(c => c.RecentAudioSeconds) / window;
        return new
        {
            rate_window_seconds = window,
            // Audio seconds finished per wall-clock second, over the window, fleet-wide.
            fleet_rate = fleetRate,
            fleet_audio_hours_per_minute = fleetRate * 60 / 3600,
            paused_queues = paused.Select(p => p.Queue),
            // Queued shards of pipelines no running worker serves (issue 15): they wait for a worker that loads the pipeline.
            unservable = unservable.Select(u => new { pipeline = u.Pipeline, shards = u.Shards, audio_seconds = u.AudioSeconds }),
            corpora = corpora.Select(c => new
            {
                id = c.Id,
                name = c.Name,
                queue = c.Queue,
                queue_paused = paused.Any(p => p.Queue == c.Queue),
                priority = c.Priority,
                pipeline = c.Pipeline,
                files = c.Files,
                audio_seconds = c.AudioSeconds,
                audio_hours = c.AudioSeconds / 3600,
                processed_seconds = c.ProcessedSeconds,
                processed_hours = c.ProcessedSeconds / 3600,
                progress = c.Progress,
                shards = c.ShardsByState,
                failed_shards = c.ShardsByState.GetValueOrDefault(ShardState.Dead.ToDb()),
                failed_files = c.FailedFiles,
                segments = c.Segments,
                stage_results = results.GetValueOrDefault(c.Id),
                recent_rate = c.RecentRate,
                eta_seconds = c.EtaSeconds,
                cancelled = c.Cancelled,
                created_at = c.CreatedAt,
            }),
        };
    }

    private static object ShardDetailJson(ShardDetail d) => new
    {
        shard = d.Shard,
        lease_expires_at = d.LeaseExpiresAt,
        heartbeat_at = d.HeartbeatAt,
        created_at = d.CreatedAt,
        root_dir = d.RootDir,
        items = d.Items,
        items_listed = d.Items.Count,
        attempts = d.Attempts,
        file_failures = d.FileFailures,
        segments = d.SegmentsWritten,
    };

    private static object WorkerJson(WorkerRow w, TimeSpan staleAfter) => new
    {
        id = w.Id, node = w.Node, pid = w.Pid, slot = w.Slot, gpu_index = w.GpuIndex, gpu_uuid = w.GpuUuid, gpu_name = w.GpuName,
        execution_provider = w.ExecutionProvider,
        // A GPU slot whose session runs on CPU: the silent failure the overview flags in red.
        gpu_slot_on_cpu = w.GpuSlotOnCpu,
        threads = w.Threads, version = w.Version,
        state = w.StateAt(staleAfter),
        registered_state = w.State, started_at = w.StartedAt, heartbeat_at = w.HeartbeatAt,
        heartbeat_age_seconds = Math.Round(w.HeartbeatAge.TotalSeconds, 1), stopped_at = w.StoppedAt,
        // The worker's clock minus the database's at its last heartbeat (migration 008).
        clock_offset_ms = w.ClockOffsetMs, clock_checked_at = w.ClockCheckedAt,
        current_shard = w.CurrentShard, shards_completed = w.ShardsCompleted, audio_seconds_done = w.AudioSecondsDone,
        last_rate = w.LastRate, detail = w.Detail,
        // Claim latency as reported with the registry heartbeat (migration 007).
        claims = w.Claims, claim_seconds_sum = w.ClaimSeconds, claim_last_ms = w.ClaimLastMs, claim_max_ms = w.ClaimMaxMs,
    };

    internal static async Task<ShardFilter> ParseFilterAsync(IQueryCollection q, CorpusStatusReader corpora, CancellationToken ct)
    {
        long? corpusId = Text(q, "corpus") is { } name ? (await corpora.GetCorpusAsync(name, ct)).Id : null;
        var state = Text(q, "state");
        if (state is not null && !ShardStates.All.Any(s => s.ToDb() == state))
            throw new ApiException(400, $"Unknown state '{state}'; use one of {string.Join(", ", ShardStates.All.Select(s => s.ToDb()))}.");
        var limit = Long(q, "limit") ?? 100;
        if (limit < 1) throw new ApiException(400, "limit must be at least 1 (at most " + DashboardReader.MaxPageSize + ").");
        return new ShardFilter(corpusId, state, Text(q, "queue"), Text(q, "node"), Text(q, "worker"), Text(q, "file"),
            Long(q, "after") ?? 0, (int)Math.Min(limit, DashboardReader.MaxPageSize));
    }

    /// <summary>
    /// An action's fields, from the query string, then a posted form or a JSON object body (later
    /// ones win): the same names either way, so a page's form and an API client ask alike.
    /// </summary>
    private static async Task<IQueryCollection> ActionFieldsAsync(HttpRequest req, CancellationToken ct)
    {
        var fields = new Dictionary<string, StringValues>(StringComparer.OrdinalIgnoreCase);
        foreach (var (k, v) in req.Query) fields[k] = v;
        if (req.HasFormContentType)
        {
            foreach (var (k, v) in await req.ReadFormAsync(ct)) fields[k] = v;
        }
        else if (req.HasJsonContentType())
        {
            JsonDocument doc;
            try { doc = await JsonDocument.ParseAsync(req.Body, cancellationToken: ct); }
            catch (JsonException e) { throw new ApiException(400, "The body is not valid JSON: " + e.Message); }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new ApiException(400, "The body must be a JSON object, e.g. {\"corpus\": \"NAME\"}.");
                foreach (var p in doc.RootElement.EnumerateObject())
                    fields[p.Name] = p.Value.ValueKind switch
                    {
                        JsonValueKind.String => p.Value.GetString(),
                        JsonValueKind.Number => p.Value.GetRawText(),
                        JsonValueKind.True => "1",
                        JsonValueKind.False or JsonValueKind.Null => StringValues.Empty,
                        _ => throw new ApiException(400, $"Field '{p.Name}' must be a string, number or boolean."),
                    };
            }
        }
        return new QueryCollection(fields);
    }

    private static string? Text(IQueryCollection q, string key) =>
        q.TryGetValue(key, out var v) && v.ToString() is { Length: > 0 } s ? s : null;

    private static long? Long(IQueryCollection q, string key) =>
        Text(q, key) is not { } s ? null
        : long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) ? n
        : throw new ApiException(400, $"{key} must be a whole number, not '{s}'.");

    internal static Actor ActorOf(HttpContext ctx) =>
        new(ctx.User.FindFirstValue(ClaimTypes.Name) ?? "unknown", ctx.Connection.RemoteIpAddress?.ToString());

    /// <summary>JSON for API clients; for a form posted from a page, back to that page (303).</summary>
    private static IResult Done(HttpContext ctx, object result) =>
        ctx.Request.HasFormContentType
            ? new SeeOther(LocalReturnPath.Parse(ctx.Request.Form["return"].ToString()))
            : Results.Json(result, DashboardApp.Json);

    /// <summary>303 to <paramref name="location"/>: a posted form's answer, so a reload does not post again.</summary>
    internal sealed class SeeOther(string location) : IResult
    {
        public Task ExecuteAsync(HttpContext ctx)
        {
            ctx.Response.StatusCode = StatusCodes.Status303SeeOther;
            ctx.Response.Headers.Location = location;
            return Task.CompletedTask;
        }
    }
}
