using Microsoft.Extensions.Logging;
using Workers.Postgres;
using Polly;
using Polly.Retry;

namespace Workers.Fleet.Resilience;

/// <summary>
/// Retries for a worker's database calls (Polly): a transient fault (connection refused or reset,
/// server restarting, too many connections, serialization failure) is retried with exponential
/// backoff and jitter instead of killing the worker. The loop pipeline retries for as long as it
/// takes (a database that is down for an hour pauses the node for an hour, then it resumes by
/// itself); the completion pipeline gives up after about a lease, because past that the fence
/// refuses the write anyway.
/// </summary>
public static class DatabaseRetry
{
    /// <summary>Retries until the call succeeds or the token is cancelled; waits 1 s doubling to 60 s, with jitter.</summary>
    /// <param name="onRetry">Called with the error before each wait (tests wait on it instead of on the log line).</param>
    public static ResiliencePipeline Forever(ILogger logger, TimeProvider time, Action<Exception?>? onRetry = null) =>
        Build(int.MaxValue, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60), logger, time, onRetry);

    /// <summary>About <paramref name="budget"/> of retrying, then the last error is thrown.</summary>
    public static ResiliencePipeline Within(TimeSpan budget, ILogger logger, TimeProvider time, Action<Exception?>? onRetry = null)
    {
        var attempts = Math.Max(1, (int)Math.Ceiling(Math.Log2(Math.Max(2, budget.TotalSeconds))));
        return Build(attempts, TimeSpan.FromSeconds(0.5), TimeSpan.FromSeconds(Math.Max(1, budget.TotalSeconds / 4)), logger, time, onRetry);
    }

    private static ResiliencePipeline Build(int attempts, TimeSpan first, TimeSpan max, ILogger logger, TimeProvider time, Action<Exception?>? onRetry) =>
        new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(PostgresErrors.IsTransient),
                MaxRetryAttempts = attempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = first,
                MaxDelay = max,
                OnRetry = a =>
                {
                    logger.LogWarning("Database unavailable ({Error}); retry {Attempt} in {Delay:0.0} s",
                        a.Outcome.Exception?.Message, a.AttemptNumber + 1, a.RetryDelay.TotalSeconds);
                    onRetry?.Invoke(a.Outcome.Exception);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
}
