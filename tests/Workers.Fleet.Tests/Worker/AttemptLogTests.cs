using System.Text;
using Microsoft.Extensions.Logging;
using Workers.Fleet.Worker;
using Workers.Testing;

namespace Workers.Fleet.Tests.Worker;

/// <summary>The ring behind <c>shard_attempts.log_tail</c>: bounded, ordered, one attempt at a time, safe from many threads.</summary>
public sealed class AttemptLogTests
{
    [Fact]
    public void Keeps_the_last_lines_of_the_attempt_oldest_first()
    {
        var capture = new AttemptLog(maxLines: 100, maxBytes: 1 << 20);
        var log = capture.CreateLogger("Worker");
        capture.Begin();
        for (var i = 0; i < 250; i++) log.LogInformation("line {N}", i);

        var lines = capture.Snapshot()!.Split('\n');
        Assert.Equal(100, lines.Length);
        Assert.Equal(Enumerable.Range(150, 100).Select(i => $"line {i}"), lines.Select(l => l[(l.IndexOf(": ", StringComparison.Ordinal) + 2)..]));
    }

    [Fact]
    public void A_line_says_when_at_which_level_from_where_what_and_which_exception()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 4, 5, 6, 7, 890, TimeSpan.Zero));
        var capture = new AttemptLog(time: time);
        using var factory = LoggerFactory.Create(b => b.AddProvider(capture));
        capture.Begin();
        factory.CreateLogger("Database").LogWarning(new IOException("connection reset"), "Retrying in {Seconds} s", 2);
        factory.CreateLogger("Worker").LogError("Shard {Shard} failed", 7);

        Assert.Equal("05:06:07.890 warn Database: Retrying in 2 s | IOException: connection reset\n05:06:07.890 fail Worker: Shard 7 failed",
            capture.Snapshot());
    }

    [Fact]
    public void The_tail_stays_within_its_byte_budget_counting_utf8_and_cuts_an_overlong_line()
    {
        var capture = new AttemptLog(maxLines: 100, maxBytes: 2048);
        var log = capture.CreateLogger("W");
        capture.Begin();
        for (var i = 0; i < 100; i++) log.LogInformation("{N} {Text}", i, new string('é', 40)); // 2 bytes each in UTF-8
        var tail = capture.Snapshot()!;
        Assert.InRange(Encoding.UTF8.GetByteCount(tail) + 1, 1500, 2048); // + 1: the last line's newline is budgeted too
        var lines = tail.Split('\n');
        Assert.True(lines.Length < 100, $"{lines.Length} lines");
        Assert.Contains(": 99 ", lines[^1]); // the newest is kept, the oldest went

        // One huge line (an exception message of a megabyte, say) is cut to a quarter of the budget: it
        // keeps its start and leaves room for the lines before it.
        log.LogError("{Huge}", "😀" + new string('x', 1 << 20));
        tail = capture.Snapshot()!;
        Assert.InRange(Encoding.UTF8.GetByteCount(tail) + 1, 1, 2048);
        var last = tail.Split('\n')[^1];
        Assert.Contains("fail W: 😀xxx", last);
        Assert.EndsWith("(cut)", last);
        Assert.InRange(Encoding.UTF8.GetByteCount(last) + 1, 400, 512);
        Assert.True(tail.Split('\n').Length > 1);
    }

    [Fact]
    public void Outside_an_attempt_nothing_is_formatted_and_a_new_attempt_starts_empty()
    {
        var capture = new AttemptLog();
        var log = capture.CreateLogger("Worker");
        var formatted = 0;
        void Say(string text) => log.Log(LogLevel.Information, 0, text, null, (s, _) => { formatted++; return s; });

        Say("before any attempt");
        Assert.False(log.IsEnabled(LogLevel.Information));
        Assert.Equal(0, formatted);
        Assert.Null(capture.Snapshot());

        capture.Begin();
        Assert.True(log.IsEnabled(LogLevel.Information));
        Say("attempt 1");
        capture.Begin();
        Say("attempt 2");
        var tail = capture.Snapshot()!;
        Assert.EndsWith("attempt 2", tail);
        Assert.DoesNotContain("attempt 1", tail);

        capture.End();
        Say("between attempts");
        Assert.Equal(2, formatted);
        Assert.Null(capture.Snapshot());
    }

    [Fact]
    public void A_formatter_that_throws_loses_its_line_not_the_caller()
    {
        var capture = new AttemptLog();
        var log = capture.CreateLogger("Worker");
        capture.Begin();
        log.Log<string>(LogLevel.Warning, 0, "x", null, (_, _) => throw new FormatException("bad template"));
        log.LogInformation("still here");
        Assert.EndsWith("info Worker: still here", capture.Snapshot());
    }

    [Fact]
    public async Task Lines_from_many_threads_all_land_whole_each_writer_in_its_own_order()
    {
        const int writers = 8, each = 5000;
        var capture = new AttemptLog(maxLines: 100, maxBytes: 1 << 20);
        capture.Begin();
        using var go = new Barrier(writers + 1);
        var tasks = Enumerable.Range(0, writers).Select(w => Task.Factory.StartNew(() =>
        {
            var log = capture.CreateLogger($"Thread{w}");
            go.SignalAndWait();
            for (var i = 0; i < each; i++) log.LogInformation("{W} {I}", w, i);
        }, TaskCreationOptions.LongRunning)).ToList();

        go.SignalAndWait();
        // Snapshots taken meanwhile are always within bounds and made of whole lines.
        while (!tasks.All(t => t.IsCompleted))
        {
            if (capture.Snapshot() is { } during) Assert.InRange(during.Split('\n').Length, 1, 100);
        }
        await Task.WhenAll(tasks);

        var lines = capture.Snapshot()!.Split('\n');
        Assert.Equal(100, lines.Length);
        var parsed = lines.Select(l => l[(l.IndexOf(": ", StringComparison.Ordinal) + 2)..].Split(' ').Select(int.Parse).ToArray()).ToList();
        Assert.All(lines.Zip(parsed), p => Assert.Contains($"info Thread{p.Second[0]}: ", p.First));
        foreach (var g in parsed.GroupBy(p => p[0]))
        {
            var order = g.Select(p => p[1]).ToList();
            Assert.Equal(order.Order(), order);
        }
        // The newest line in the ring is the last one added, which no writer followed with another: some writer's final line.
        Assert.Equal(each - 1, parsed[^1][1]);
    }
}
