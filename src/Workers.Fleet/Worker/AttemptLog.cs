using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Workers.Fleet.Worker;

/// <summary>
/// The last log lines of the shard attempt in progress, for <c>shard_attempts.log_tail</c>: a person
/// looking at a failed shard on the dashboard sees what the worker said during THAT attempt
/// (retries, OOM halving, ONNX Runtime warnings, the failure) without going to the node.
/// <para>
/// An <see cref="ILoggerProvider"/> registered with the worker process's logger factory, so every
/// category and every thread of the process (heartbeat, decode prefetch, inference) is captured
/// while an attempt is active: one worker process runs one attempt at a time. <see cref="Begin"/>
/// when a shard is claimed, <see cref="Snapshot"/> when its outcome is written, <see cref="End"/>
/// after. Outside an attempt nothing is formatted (<see cref="ILogger.IsEnabled"/> says no).
/// </para>
/// <para>
/// Bounded: a ring of at most <see cref="MaxLines"/> lines and <see cref="MaxBytes"/> UTF-8 bytes
/// (newlines included); the oldest lines go first. One line is at most a quarter of the byte budget
/// (longer ones are cut), so a single huge message cannot push out everything before it. It keeps
/// only what the log already says; nothing here adds to it.
/// </para>
/// </summary>
public sealed class AttemptLog : ILoggerProvider
{
    /// <summary><value>The default value is 100.</value></summary>
    public const int DefaultMaxLines = 100;

    /// <summary><value>The default value is 16 KiB.</value></summary>
    public const int DefaultMaxBytes = 16 * 1024;

    private const string Cut = " ...(cut)";

    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly string?[] _lines;
    private readonly int[] _sizes; // UTF-8 bytes of each line, its newline included
    private readonly int _maxLineBytes;
    private int _first; // index of the oldest line
    private int _count;
    private int _bytes;
    // Bumped by Begin and End, so a line formatted during one attempt but added after the next
    // began is dropped instead of landing in the wrong attempt's tail.
    private long _generation;
    private volatile bool _active;

    public AttemptLog(int maxLines = DefaultMaxLines, int maxBytes = DefaultMaxBytes, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLines, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 64);
        MaxLines = maxLines;
        MaxBytes = maxBytes;
        _maxLineBytes = maxBytes / 4;
        _lines = new string?[maxLines];
        _sizes = new int[maxLines];
        _time = time ?? TimeProvider.System;
    }

    public int MaxLines { get; }
    public int MaxBytes { get; }

    /// <summary>True between <see cref="Begin"/> and <see cref="End"/>.</summary>
    public bool Active => _active;

    /// <summary>Starts the capture of a new attempt: the previous attempt's lines are dropped.</summary>
    public void Begin()
    {
        lock (_gate)
        {
            Clear();
            _generation++;
            _active = true;
        }
    }

    /// <summary>Stops capturing (and lets go of the lines) until the next <see cref="Begin"/>.</summary>
    public void End()
    {
        lock (_gate)
        {
            _active = false;
            _generation++;
            Clear();
        }
    }

    /// <summary>The captured lines, oldest first, one per line; null when there are none.</summary>
    public string? Snapshot()
    {
        string?[] lines;
        lock (_gate)
        {
            if (_count == 0) return null;
            lines = new string?[_count];
            for (var i = 0; i < _count; i++) lines[i] = _lines[(_first + i) % _lines.Length];
        }
        return string.Join('\n', lines);
    }

    public ILogger CreateLogger(string categoryName) => new CaptureLogger(this, categoryName);

    public void Dispose() { }

    private void Clear()
    {
        Array.Clear(_lines);
        _first = _count = _bytes = 0;
    }

    private void Add(long generation, LogLevel level, string category, string message, Exception? exception)
    {
        var line = exception is null
            ? string.Create(CultureInfo.InvariantCulture, $"{_time.GetUtcNow():HH:mm:ss.fff} {Level(level)} {category}: {message}")
            : string.Create(CultureInfo.InvariantCulture, $"{_time.GetUtcNow():HH:mm:ss.fff} {Level(level)} {category}: {message} | {exception.GetType().Name}: {exception.Message}");
        var size = System.Text.Encoding.UTF8.GetByteCount(line);
        if (size > _maxLineBytes - 1)
        {
            var keep = FitUtf8(line, _maxLineBytes - 1 - Cut.Length);
            line = string.Concat(line.AsSpan(0, keep), Cut);
            size = System.Text.Encoding.UTF8.GetByteCount(line);
        }
        size++; // its newline
        lock (_gate)
        {
            if (!_active || generation != _generation) return;
            while (_count > 0 && (_count == _lines.Length || _bytes + size > MaxBytes))
            {
                _bytes -= _sizes[_first];
                _lines[_first] = null;
                _first = (_first + 1) % _lines.Length;
                _count--;
            }
            var at = (_first + _count) % _lines.Length;
            _lines[at] = line;
            _sizes[at] = size;
            _bytes += size;
            _count++;
        }
    }

    /// <summary>How many leading chars of <paramref name="s"/> fit in <paramref name="maxBytes"/> UTF-8 bytes, not splitting a surrogate pair.</summary>
    private static int FitUtf8(string s, int maxBytes)
    {
        var bytes = 0;
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            var pair = char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]);
            var n = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
            if (bytes + n > maxBytes) return i;
            bytes += n;
            if (pair) i++;
        }
        return s.Length;
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => "none",
    };

    private sealed class CaptureLogger(AttemptLog owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && owner._active;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var generation = Volatile.Read(ref owner._generation);
            // A capture that fails (a formatter that throws, say) must not turn a log call into a
            // failure of the shard: the line is lost, the work goes on.
            try { owner.Add(generation, logLevel, category, formatter(state, exception), exception); }
            catch (Exception) { }
        }
    }
}
