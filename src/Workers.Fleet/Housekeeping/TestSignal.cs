using System.Threading.Channels;

namespace Workers.Fleet.Housekeeping;

/// <summary>
/// An event a test can wait for (River's TestSignals): a service given one signals each time it
/// has done a unit of work; production never gives one. Unbounded, so a signal is never lost and
/// never blocks the service.
/// </summary>
public sealed class TestSignal<T>
{
    private readonly Channel<T> _events = Channel.CreateUnbounded<T>(new UnboundedChannelOptions { SingleReader = true });

    public void Signal(T value) => _events.Writer.TryWrite(value);

    /// <summary>The next event, in order.</summary>
    public ValueTask<T> WaitAsync(CancellationToken ct) => _events.Reader.ReadAsync(ct);
}
