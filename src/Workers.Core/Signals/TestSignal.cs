using System.Threading.Channels;

namespace Workers.Core.Signals;

/// <summary>
/// An event a test waits on instead of sleeping or matching log text (River's <c>TestSignals</c>): a
/// component given one (production never gives one) calls <see cref="Signal"/> each time the event happens;
/// the test awaits <see cref="WaitAsync(TimeSpan?, CancellationToken)"/>, which returns the next value, in
/// order. Unbounded, so a signal is never lost and never blocks the component; values signalled before
/// anyone waits are kept, so the order of signal and wait does not matter.
/// </summary>
public sealed class TestSignal<T>(string name = "event")
{
    /// <summary>How long a wait lasts by default: long, because a shared CI machine is slow; a passing test never waits it out.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    private readonly Channel<T> _values = Channel.CreateUnbounded<T>(new UnboundedChannelOptions { AllowSynchronousContinuations = false });

    /// <summary>What the event is, for the failure message (e.g. "probe entered").</summary>
    public string Name { get; } = name;

    /// <summary>Records that the event happened, with its value. Never blocks.</summary>
    public void Signal(T value) => _values.Writer.TryWrite(value);

    /// <summary>The next value signalled, waiting as long as <paramref name="ct"/> allows.</summary>
    public ValueTask<T> WaitAsync(CancellationToken ct) => _values.Reader.ReadAsync(ct);

    /// <summary>The next value signalled; a <see cref="TimeoutException"/> naming the event when none comes within
    /// <paramref name="timeout"/> (default <see cref="DefaultTimeout"/>).</summary>
    public async Task<T> WaitAsync(TimeSpan? timeout = null, CancellationToken ct = default)
    {
        var limit = timeout ?? DefaultTimeout;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(limit);
        try
        {
            return await _values.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"test signal '{Name}' was not signalled within {limit.TotalSeconds:0.#} s");
        }
    }

    /// <summary>True, and the value, when the event has been signalled and not yet waited for; never waits.</summary>
    public bool TryTake(out T value) => _values.Reader.TryRead(out value!);
}

/// <summary>A <see cref="TestSignal{T}"/> that carries no value.</summary>
public sealed class TestSignal(string name = "event")
{
    private readonly TestSignal<bool> _inner = new(name);

    /// <summary>What the event is, for the failure message.</summary>
    public string Name => _inner.Name;

    /// <summary>Records that the event happened. Never blocks.</summary>
    public void Signal() => _inner.Signal(true);

    /// <summary>Returns when the event has been signalled (once per <see cref="Signal"/>); a <see cref="TimeoutException"/> after <paramref name="timeout"/>.</summary>
    public Task WaitAsync(TimeSpan? timeout = null, CancellationToken ct = default) => _inner.WaitAsync(timeout, ct);

    /// <summary>True when the event has been signalled and not yet waited for; never waits.</summary>
    public bool TryTake() => _inner.TryTake(out _);
}
