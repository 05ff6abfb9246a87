namespace Workers.Onnx;

/// <summary>The last <see cref="Capacity"/> lines ONNX Runtime logged, oldest first. ORT may log from
/// any of its threads, so every access takes one lock; lines are rare (warnings and up by default),
/// so the lock is never contended in practice.</summary>
public sealed class OrtLogBuffer
{
    private readonly Lock gate = new();
    private readonly OrtLogEntry?[] ring;
    private long next; // sequence number the next line gets; also the count ever written

    public OrtLogBuffer(int capacity = 512)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ring = new OrtLogEntry?[capacity];
    }

    public int Capacity => ring.Length;

    /// <summary>The sequence number the next line will get: take it before a call, pass it to
    /// <see cref="Since"/> after, and you have what ORT said during the call.</summary>
    public long Mark()
    {
        lock (gate) return next;
    }

    /// <summary>Lines with a sequence number of at least <paramref name="mark"/> that are still held.</summary>
    public IReadOnlyList<OrtLogEntry> Since(long mark)
    {
        lock (gate)
        {
            var first = Math.Max(mark, next - ring.Length);
            var result = new List<OrtLogEntry>((int)Math.Max(0, next - first));
            for (var s = first; s < next; s++) result.Add(ring[s % ring.Length]!);
            return result;
        }
    }

    /// <summary>Every line still held, oldest first.</summary>
    public IReadOnlyList<OrtLogEntry> Snapshot() => Since(0);

    internal OrtLogEntry Add(OrtLogSeverity severity, string category, string logId, string codeLocation, string message)
    {
        lock (gate)
        {
            var entry = new OrtLogEntry(next, severity, category, logId, codeLocation, message);
            ring[next % ring.Length] = entry;
            next++;
            return entry;
        }
    }
}
