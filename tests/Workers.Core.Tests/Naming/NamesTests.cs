using Workers.Core.Corpora;
using Workers.Core.Naming;

namespace Workers.Core.Tests.Naming;

/// <summary>The one name rule of issue 13, as `workers enqueue`, `workers run --queues`, the API and the dashboard's form see it.</summary>
public sealed class NamesTests
{
    [Theory]
    [InlineData("q1\n")] // the example: '$' matched before a final newline
    [InlineData("q1\r\n")]
    [InlineData("\nq1")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("")]
    [InlineData("a b")]
    [InlineData("team/a")]
    [InlineData("q\u202e1")]
    public void A_queue_name_that_does_not_round_trip_is_refused(string queue)
    {
        Assert.NotNull(Names.QueueProblem(queue));
        var e = Assert.Throws<ArgumentException>(() => Names.CheckedQueue(queue, "--queues"));
        Assert.Contains("--queues", e.Message);
        // The message shows the name escaped, never a raw control character.
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain('\u202e', e.Message);
    }

    [Theory]
    [InlineData("default")]
    [InlineData("gpu-h100_2.a")]
    [InlineData("...x")]
    public void Ordinary_queue_names_are_accepted(string queue) => Assert.Null(Names.QueueProblem(queue));

    [Theory]
    [InlineData(".", "'.' or '..'")]
    [InlineData("..", "'.' or '..'")]
    [InlineData("team/..", "'.' or '..'")]
    [InlineData("a//b", "empty")]
    [InlineData("/a", "empty")]
    [InlineData("team%2Fb", "'%'")] // the example: its dashboard buttons 404'd
    [InlineData("a\\b", "'\\'")]
    [InlineData("evil\u202egnp.wav", "U+202E")] // right-to-left override
    [InlineData("a\u2066b", "U+2066")] // left-to-right isolate
    [InlineData("zero\u200bwidth", "U+200B")]
    [InlineData("esc\u001b[31mred", "U+001B")]
    [InlineData("nul\0", "U+0000")]
    [InlineData("c1\u009b", "U+009B")]
    [InlineData("line\u2028sep", "U+2028")]
    [InlineData("c\n", "U+000A")]
    [InlineData(" padded", "white space")]
    [InlineData("   ", "empty")]
    public void A_corpus_name_that_does_not_round_trip_is_refused_with_the_reason(string name, string reason)
    {
        var problem = Names.CorpusProblem(name);
        Assert.NotNull(problem);
        Assert.Contains(reason, problem);
    }

    [Fact]
    public void An_unpaired_surrogate_in_a_corpus_name_is_refused() =>
        Assert.Contains("unpaired surrogate", Names.CorpusProblem("a\ud800b"));

    [Theory]
    [InlineData("librispeech-clean")]
    [InlineData("team/a b")]
    [InlineData("Ünïcödé 語音 😀")]
    [InlineData("a.b..c")]
    public void Ordinary_corpus_names_round_trip_through_a_url_path_segment(string name)
    {
        Assert.Null(Names.CorpusProblem(name));
        // What the dashboard does: escape for a link; ASP.NET decodes all but %2F; RouteText turns %2F back.
        var segment = Uri.EscapeDataString(name);
        var routed = Uri.UnescapeDataString(segment.Replace("%2F", "\u0001", StringComparison.Ordinal)).Replace("\u0001", "%2F", StringComparison.Ordinal);
        Assert.Equal(name, routed.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Enqueue_settings_use_the_rule_for_both_names()
    {
        var s = new EnqueueSettings(null, 30, "vad", "q1\n", 0);
        var problems = s.Validate("..", [], f => "--" + f);
        Assert.Contains(problems, p => p.StartsWith("--queue 'q1\\u000A'", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("--name '..'", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("plain/path.wav", "plain/path.wav")]
    [InlineData("evil\u202egnp.wav", "evil\\u202Egnp.wav")]
    [InlineData("\u001b]0;owned\u0007x", "\\u001B]0;owned\\u0007x")]
    [InlineData("a\r\nb", "a\\u000D\\u000Ab")]
    [InlineData("ok 😀", "ok 😀")]
    public void Printable_escapes_what_would_drive_a_terminal(string text, string shown) =>
        Assert.Equal(shown, Names.Printable(text));

    [Fact]
    public void Printable_escapes_an_unpaired_surrogate() => // not in InlineData: attribute blobs are UTF-8 and would mangle it
        Assert.Equal("bad\\uD800!", Names.Printable("bad" + (char)0xD800 + "!"));
}
