using Hangfire;
using Hangfire.Common;
using Hangfire.Storage.Monitoring;
using Workers.Postgres.Dashboard;

namespace Workers.Dashboard.Enqueue;

/// <summary>An enqueue job as the Enqueue page lists it.</summary>
public sealed record EnqueueJobRow(string Id, string State, string Corpus, string? Progress, DateTime? At);

/// <summary>Starts <see cref="EnqueueJob"/>s and lists the newest ones from Hangfire's monitoring API.</summary>
public sealed class EnqueueJobs(IBackgroundJobClient client, JobStorage storage)
{
    /// <summary>Jobs looked at per state, and listed in all.</summary>
    public const int Shown = 10;

    /// <summary>Enqueues the job for <paramref name="input"/> (its name filled in by <see cref="DashboardEnqueue.CheckAsync"/>); returns its id.</summary>
    public string Start(EnqueueInput input, Actor actor) =>
        client.Enqueue<EnqueueJob>(j => j.RunAsync(input.Name!, input, actor, null, CancellationToken.None));

    /// <summary>The newest enqueue jobs, whatever their state, newest first.</summary>
    public IReadOnlyList<EnqueueJobRow> Recent() => RecentOf(storage, typeof(EnqueueJob), EnqueueJob.ProgressParameter);

    /// <summary>The newest jobs of <paramref name="jobType"/> (queue control, first argument the corpus), whatever their state,
    /// newest first, each with its <paramref name="progressParameter"/>.</summary>
    internal static IReadOnlyList<EnqueueJobRow> RecentOf(JobStorage storage, Type jobType, string progressParameter)
    {
        var api = storage.GetMonitoringApi();
        var rows = new List<EnqueueJobRow>();
        void Add<T>(JobList<T> list, string state, Func<T, Job?> job, Func<T, DateTime?> at)
        {
            foreach (var (id, dto) in list)
                if (job(dto) is { Type: var t, Args: [string corpus, ..] } && t == jobType)
                    rows.Add(new EnqueueJobRow(id, state, corpus, null, at(dto)));
        }
        Add(api.EnqueuedJobs(HangfireSetup.ControlQueue, 0, Shown), "Enqueued", d => d.Job, d => d.EnqueuedAt);
        Add(api.ProcessingJobs(0, Shown), "Processing", d => d.Job, d => d.StartedAt);
        Add(api.SucceededJobs(0, Shown), "Succeeded", d => d.Job, d => d.SucceededAt);
        Add(api.FailedJobs(0, Shown), "Failed", d => d.Job, d => d.FailedAt);
        Add(api.DeletedJobs(0, Shown), "Deleted", d => d.Job, d => d.DeletedAt);
        Add(api.ScheduledJobs(0, Shown), "Scheduled (retry)", d => d.Job, d => d.EnqueueAt);
        using var connection = storage.GetConnection();
        return [.. rows.OrderByDescending(r => r.At).Take(Shown)
            .Select(r => r with { Progress = connection.GetJobParameter(r.Id, progressParameter) is { } raw ? SerializationHelper.Deserialize<string>(raw) : null })];
    }
}
