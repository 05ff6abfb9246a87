using System.Text;

namespace Workers.Stages;

/// <summary>
/// Joins decoded tokens into a sentence the way FunASR does for Paraformer (funasr_onnx
/// <c>utils/postprocess_utils.py</c>, <c>sentence_postprocess</c> without time stamps, and
/// <c>sentence_postprocess_sentencepiece</c>), ported rule for rule:
/// <list type="bullet">
/// <item>tokens carrying sentencepiece's word mark <c>▁</c> (U+2581): the mark starts a new word, i.e.
/// becomes a space (FunASR's <c>en-bpe</c> models);</item>
/// <item>otherwise all Chinese (CJK U+4E00..U+9FFF, digits, '@'): concatenated; all alphabetic: words
/// joined by spaces, a token ending in <c>@@</c> continued by the next one; a mix: Chinese characters
/// concatenated, words spaced, <c>@@</c> joined; then runs of single letters ("a b c") become one
/// upper-case abbreviation ("ABC"), as FunASR's <c>abbr_dispose</c> does.</item>
/// </list>
/// <c>&lt;s&gt;</c>, <c>&lt;/s&gt;</c>, <c>&lt;unk&gt;</c> and <c>&lt;OOV&gt;</c> are left out.
/// </summary>
public static class FunAsrText
{
    /// <summary>The sentencepiece word mark.</summary>
    public const char WordMark = '\u2581';

    private static readonly string[] Markers = ["<s>", "</s>", "<unk>", "<OOV>"];

    public static string Join(IReadOnlyList<string> tokens)
    {
        var middle = tokens.Where(t => Array.IndexOf(Markers, t) < 0).ToList();
        if (middle.Any(t => t.Contains(WordMark))) return JoinSentencepiece(middle);
        var words = new List<string>();
        var item = new StringBuilder();
        if (IsAllChinese(middle))
        {
            foreach (var ch in middle) words.Add(ch.Replace(" ", "", StringComparison.Ordinal));
        }
        else if (IsAllAlpha(middle))
        {
            foreach (var ch in middle)
            {
                if (ch.Contains("@@", StringComparison.Ordinal))
                {
                    item.Append(ch.Replace("@@", "", StringComparison.Ordinal));
                    continue;
                }
                item.Append(ch);
                words.Add(item.ToString());
                words.Add(" ");
                item.Clear();
            }
        }
        else
        {
            var alphaBlank = false;
            foreach (var ch in middle)
            {
                if (IsAllChinese(Chars(ch)))
                {
                    if (alphaBlank) words.RemoveAt(words.Count - 1);
                    words.Add(ch);
                    alphaBlank = false;
                }
                else if (ch.Contains("@@", StringComparison.Ordinal))
                {
                    item.Append(ch.Replace("@@", "", StringComparison.Ordinal));
                    alphaBlank = false;
                }
                else if (IsAllAlpha(Chars(ch)))
                {
                    item.Append(ch);
                    words.Add(item.ToString());
                    words.Add(" ");
                    item.Clear();
                    alphaBlank = true;
                }
                else words.Add(ch);
            }
        }
        return string.Concat(Abbreviations(words)).Trim();
    }

    private static string JoinSentencepiece(List<string> middle)
    {
        var words = new StringBuilder();
        var item = new StringBuilder();
        for (var i = 0; i < middle.Count; i++)
        {
            var ch = middle[i];
            if (ch.Contains(WordMark) && i != 0)
            {
                words.Append(item).Append(' ');
                item.Clear();
            }
            item.Append(ch.Contains(WordMark) ? ch.Replace(WordMark.ToString(), "", StringComparison.Ordinal) : ch);
        }
        return words.Append(item).ToString();
    }

    /// <summary>FunASR's <c>abbr_dispose</c>: "a", " ", "b", " ", "c" become "ABC".</summary>
    private static List<string> Abbreviations(List<string> words)
    {
        var size = words.Count;
        var begins = new HashSet<int>();
        var ends = new List<int>();
        var last = -1;
        for (var start = 0; start < size; start++)
        {
            if (start <= last) continue;
            var num = start;
            if (!IsAsciiLetter(words[num])) continue;
            if (!(num + 2 < size && words[num + 1] == " " && IsAsciiLetter(words[num + 2]))) continue;
            begins.Add(num);
            num += 2;
            ends.Add(num);
            while (true)
            {
                num++;
                if (num < size && words[num] == " ")
                {
                    num++;
                    if (num < size && IsAsciiLetter(words[num]))
                    {
                        ends[^1] = num;
                        last = num;
                    }
                    else break;
                }
                else break;
            }
        }
        var endSet = new HashSet<int>(ends);
        var result = new List<string>(size);
        last = -1;
        for (var start = 0; start < size; start++)
        {
            if (start <= last) continue;
            if (!begins.Contains(start))
            {
                result.Add(words[start]);
                continue;
            }
            var abbreviation = new StringBuilder(words[start].ToUpperInvariant());
            for (var num = start + 1; num < size; num++)
            {
                if (endSet.Contains(num))
                {
                    abbreviation.Append(words[num].ToUpperInvariant());
                    last = num;
                    break;
                }
                if (words[num].Length > 0 && words[num].All(char.IsAsciiLetter)) abbreviation.Append(words[num].ToUpperInvariant());
            }
            result.Add(abbreviation.ToString());
        }
        return result;
    }

    // len(w) == 1 and w.encode("utf-8").isalpha(): one ASCII letter.
    private static bool IsAsciiLetter(string w) => w.Length == 1 && char.IsAsciiLetter(w[0]);

    private static IEnumerable<string> Chars(string s) => s.Select(c => c.ToString());

    private static string Clean(string s) =>
        s.Replace(" ", "", StringComparison.Ordinal).Replace("</s>", "", StringComparison.Ordinal).Replace("<s>", "", StringComparison.Ordinal)
         .Replace("<unk>", "", StringComparison.Ordinal).Replace("<OOV>", "", StringComparison.Ordinal);

    // Python compares strings by code point: "\u4e00" <= s <= "\u9fff" is a lexicographic test on the whole string.
    private static bool IsChinese(string s) =>
        (string.CompareOrdinal("\u4e00", s) <= 0 && string.CompareOrdinal(s, "\u9fff") <= 0)
        || (string.CompareOrdinal("0", s) <= 0 && string.CompareOrdinal(s, "9") <= 0)
        || s == "@";

    private static bool IsAllChinese(IEnumerable<string> words)
    {
        var any = false;
        foreach (var w in words)
        {
            any = true;
            if (!IsChinese(Clean(w))) return false;
        }
        return any;
    }

    private static bool IsAllAlpha(IEnumerable<string> words)
    {
        var any = false;
        foreach (var w in words)
        {
            any = true;
            var cur = Clean(w);
            var alpha = IsAlpha(cur);
            if (!alpha && cur != "'") return false;
            if (alpha && IsChinese(cur)) return false;
        }
        return any;
    }

    // Python's str.isalpha: not empty, every character a letter (Unicode categories L*).
    private static bool IsAlpha(string s)
    {
        if (s.Length == 0) return false;
        foreach (var r in s.EnumerateRunes())
            if (!Rune.IsLetter(r)) return false;
        return true;
    }
}
