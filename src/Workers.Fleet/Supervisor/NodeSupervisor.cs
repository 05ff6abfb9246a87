using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace Workers.Fleet.Supervisor;

/// <summary>One worker slot: the arguments its process is started with.</summary>
public sealed record WorkerSlot(int Index, IReadOnlyList<string> Arguments, IReadOnlyDictionary<string, string> Environment);

/// <summary>Restart policy of a node's slots.</summary>
public sealed class RestartPolicy
{
    /// <summary>First restart delay; doubles per consecutive crash.</summary>
    /// <value>The default value is 1 second.</value>
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Cap on the restart delay.</summary>
    /// <value>The default value is 60 seconds.</value>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>A slot that crashes this many times within <see cref="Window"/> is crash-looping: left stopped and reported.</summary>
    /// <value>The default value is 5.</value>
    public int MaxCrashes { get; set; } = 5;

    /// <summary>The window for <see cref="MaxCrashes"/>.</summary>
    /// <value>The default value is 10 minutes.</value>
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Configuration section of the policy.</summary>
    public const string Section = "Fleet:Restart";

    /// <summary>Every problem at once, with full setting names, or an empty list.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (BaseDelay <= TimeSpan.Zero) problems.Add($"{Section}:BaseDelay must be a positive duration such as 00:00:01 (is {BaseDelay}).");
        if (MaxDelay < BaseDelay) problems.Add($"{Section}:MaxDelay must be at least {Section}:BaseDelay (is {MaxDelay}).");
        if (MaxCrashes < 1) problems.Add($"{Section}:MaxCrashes must be at least 1 (is {MaxCrashes}).");
        if (Window <= TimeSpan.Zero) problems.Add($"{Section}:Window must be a positive duration such as 00:10:00 (is {Window}).");
        return problems;
    }
}

/// <summary>
/// Runs a node's worker processes: starts one per slot, restarts a slot whose process exits
/// abnormally (a Polly retry: exponential backoff with jitter; a slot crashing <see cref="RestartPolicy.MaxCrashes"/> times
/// within the window is left stopped as crash-looping), forwards SIGTERM on shutdown so workers
/// release their shards, and returns when every slot is done.
/// </summary>
public sealed partial class NodeSupervisor(string executable, IReadOnlyList<string> prefixArgs, RestartPolicy policy, TimeProvider time, ILogger logger)
{
    private readonly HashSet<Process> _running = [];

    /// <summary>Called when a slot is given up as crash-looping (slot, last exit code, what to say), e.g. to record it in the registry.</summary>
    public Func<int, int, string, Task>? OnCrashLoop { get; init; }

    /// <summary>Stops every worker process now (SIGKILL): the second signal. Their leases expire and the shards are rescued.</summary>
    public void KillAll()
    {
        Process[] all;
        lock (_running) all = [.. _running];
        foreach (var p in all)
        {
            try { p.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { }
        }
    }

    /// <summary>Exit code of a slot that exited 0 is "done" when <paramref name="untilIdle"/>; otherwise it is restarted too.</summary>
    /// <returns>0 when every slot finished cleanly, 1 when a slot was left crash-looping.</returns>
    public async Task<int> RunAsync(IReadOnlyList<WorkerSlot> slots, bool untilIdle, CancellationToken ct)
    {
        var results = await Task.WhenAll(slots.Select(s => RunSlotAsync(s, untilIdle, ct)));
        return results.All(ok => ok) ? 0 : 1;
    }

    /// <summary>A worker process exited abnormally: the restart pipeline retries (restarts) on it.</summary>
    private sealed class WorkerCrashedException(int slot, int code) : Exception($"slot {slot}: worker exited with code {code}")
    {
        public int Code { get; } = code;
    }

    /// <summary>The slot crashed too often: not handled by the retry, so the slot stops.</summary>
    private sealed class CrashLoopingException() : Exception("crash-looping");

    private async Task<bool> RunSlotAsync(WorkerSlot slot, bool untilIdle, CancellationToken ct)
    {
        var crashes = new Queue<DateTimeOffset>();
        // The restart policy is a Polly retry: exponential backoff with jitter between restarts,
        // capped; the crash-loop window is checked on every crash and ends the retrying.
        var restarts = new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<WorkerCrashedException>(),
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = policy.BaseDelay,
                MaxDelay = policy.MaxDelay,
                OnRetry = a =>
                {
                    LogRestarting(slot.Index, ((WorkerCrashedException)a.Outcome.Exception!).Code, a.RetryDelay.TotalSeconds);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
        try
        {
            return await restarts.ExecuteAsync(async token =>
            {
                var code = await RunOnceAsync(slot, ct);
                if (ct.IsCancellationRequested) { LogStopped(slot.Index, code); return code == 0; }
                if (code == 0 && untilIdle) { LogDone(slot.Index); return true; }

                var now = time.GetUtcNow();
                crashes.Enqueue(now);
                while (crashes.Count > 0 && now - crashes.Peek() > policy.Window) crashes.Dequeue();
                if (crashes.Count >= policy.MaxCrashes)
                {
                    LogCrashLooping(slot.Index, crashes.Count, policy.Window.TotalMinutes, code);
                    if (OnCrashLoop is { } report)
                    {
                        try { await report(slot.Index, code, $"{crashes.Count} crashes within {policy.Window.TotalMinutes:0} min, last exit code {code}; left stopped"); }
                        catch (Exception e) { logger.LogWarning("Could not record crash-looping slot {Slot}: {Error}", slot.Index, e.Message); }
                    }
                    throw new CrashLoopingException();
                }
                throw new WorkerCrashedException(slot.Index, code);
            }, ct);
        }
        catch (CrashLoopingException) { return false; }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { return true; } // stopped while waiting to restart
    }

    private async Task<int> RunOnceAsync(WorkerSlot slot, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(executable) { UseShellExecute = false, RedirectStandardInput = true };
        foreach (var a in prefixArgs.Concat(slot.Arguments)) psi.ArgumentList.Add(a);
        foreach (var (k, v) in slot.Environment) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {executable}.");
        p.StandardInput.Close();
        LogStarted(slot.Index, p.Id);
        lock (_running) _running.Add(p);
        using (ct.Register(() => Terminate(p)))
            await p.WaitForExitAsync(CancellationToken.None);
        lock (_running) _running.Remove(p);
        return p.ExitCode;
    }

    /// <summary>SIGTERM: the worker stops claiming and releases its shard; it is not killed.</summary>
    private static void Terminate(Process p)
    {
        try { if (!p.HasExited) _ = Signals.Send(p.Id, Signals.SigTerm); }
        catch (InvalidOperationException) { }
    }


    [LoggerMessage(LogLevel.Information, "Slot {Slot}: worker process {Pid} started")]
    private partial void LogStarted(int slot, int pid);

    [LoggerMessage(LogLevel.Information, "Slot {Slot}: done (queues idle)")]
    private partial void LogDone(int slot);

    [LoggerMessage(LogLevel.Information, "Slot {Slot}: stopped (exit code {Code})")]
    private partial void LogStopped(int slot, int code);

    [LoggerMessage(LogLevel.Warning, "Slot {Slot}: worker exited with code {Code}; restarting in {Delay:0.#} s")]
    private partial void LogRestarting(int slot, int code, double delay);

    [LoggerMessage(LogLevel.Error, "Slot {Slot}: crash-looping ({Crashes} crashes within {Minutes:0} min, last exit code {Code}); left stopped. See its log above.")]
    private partial void LogCrashLooping(int slot, int crashes, double minutes, int code);
}
