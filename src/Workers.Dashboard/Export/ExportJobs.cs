using Hangfire;
using Workers.Dashboard.Enqueue;
using Workers.Postgres.Dashboard;

namespace Workers.Dashboard.Export;

/// <summary>Starts <see cref="ExportJob"/>s and lists the newest ones from Hangfire's monitoring API.</summary>
public sealed class ExportJobs(IBackgroundJobClient client, JobStorage storage)
{
    /// <summary>Enqueues the export of <paramref name="request"/>'s corpus; returns the job's id.</summary>
    public string Start(ExportRequest request, Actor actor) =>
        client.Enqueue<ExportJob>(j => j.RunAsync(request.Corpus, request, actor, null, CancellationToken.None));

    /// <summary>The newest export jobs, whatever their state, newest first.</summary>
    public IReadOnlyList<EnqueueJobRow> Recent() => EnqueueJobs.RecentOf(storage, typeof(ExportJob), ExportJob.ProgressParameter);
}
