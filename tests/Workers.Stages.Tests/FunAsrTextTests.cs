using Workers.Stages;

namespace Workers.Stages.Tests;

/// <summary>Tokens joined as FunASR's sentence_postprocess (and its sentencepiece variant) joins Paraformer's
/// tokens; each expectation worked out by hand from FunASR's rules (issue 15).</summary>
public sealed class FunAsrTextTests
{
    [Theory]
    [InlineData(new[] { "你", "好", "世", "界" }, "你好世界")]                         // all Chinese: concatenated
    [InlineData(new[] { "1", "2", "点" }, "12点")]                                    // digits count as Chinese
    [InlineData(new[] { "hel@@", "lo", "world" }, "hello world")]                     // all alphabetic: @@ continues, words spaced
    [InlineData(new[] { "it", "'s", "ok" }, "it 's ok")]
    [InlineData(new[] { "你", "好", "hel@@", "lo", "world", "世", "界" }, "你好hello world世界")] // a mix: no space before Chinese
    [InlineData(new[] { "a", "b", "c", "day" }, "ABC day")]                           // single letters: an abbreviation
    [InlineData(new[] { "用", "a", "b", "c" }, "用ABC")]
    [InlineData(new[] { "<s>", "你", "<unk>", "好", "</s>" }, "你好")]                 // markers left out
    [InlineData(new[] { "\u2581hello", "\u2581wor", "ld" }, "hello world")]            // sentencepiece: the mark starts a word
    [InlineData(new[] { "he", "\u2581llo" }, "he llo")]
    [InlineData(new string[0], "")]
    public void Joins_tokens_as_funasr_does(string[] tokens, string expected) =>
        Assert.Equal(expected, FunAsrText.Join(tokens));
}
