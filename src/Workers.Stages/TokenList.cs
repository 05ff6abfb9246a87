using System.Globalization;
using System.Text.Json;

namespace Workers.Stages;

/// <summary>
/// A model's output vocabulary: token <c>i</c> is what logit <c>i</c> stands for. Read from FunASR's
/// <c>tokens.json</c> (a JSON list of strings) or a <c>tokens.txt</c> (one token per line, optionally
/// followed by its id, as sherpa-onnx writes it; the ids must then count up from 0).
/// </summary>
public sealed class TokenList
{
    private readonly string[] _tokens;

    public TokenList(IReadOnlyList<string> tokens)
    {
        if (tokens.Count == 0) throw new ArgumentException("a token list needs at least one token", nameof(tokens));
        _tokens = [.. tokens];
    }

    public int Count => _tokens.Length;

    public string this[int id] => _tokens[id];

    /// <summary>The ids of <paramref name="tokens"/> that the list has (others are ignored: a vocabulary without <c>&lt;unk&gt;</c> has nothing to drop).</summary>
    public HashSet<int> IdsOf(IEnumerable<string> tokens)
    {
        var wanted = new HashSet<string>(tokens, StringComparer.Ordinal);
        var ids = new HashSet<int>();
        for (var i = 0; i < _tokens.Length; i++)
            if (wanted.Contains(_tokens[i])) ids.Add(i);
        return ids;
    }

    /// <summary>Reads <paramref name="path"/>: JSON when it starts with '[', else text lines. A damaged
    /// file is an <see cref="InvalidDataException"/> naming the file and what is wrong.</summary>
    public static TokenList Load(string path)
    {
        var text = File.ReadAllText(path);
        return text.AsSpan().TrimStart().StartsWith("[") ? ParseJson(text, path) : ParseLines(text, path);
    }

    public static TokenList ParseJson(string text, string source)
    {
        List<string?>? tokens;
        try
        {
            tokens = JsonSerializer.Deserialize<List<string?>>(text);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not a JSON list of token strings ({e.Message}). Use the tokens.json shipped with the model.", e);
        }
        if (tokens is null || tokens.Count == 0)
            throw new InvalidDataException($"{source}: the token list is empty. Use the tokens.json shipped with the model.");
        var missing = tokens.FindIndex(t => t is null);
        if (missing >= 0)
            throw new InvalidDataException($"{source}: entry {missing} is null, not a token string. Use the tokens.json shipped with the model.");
        return new TokenList(tokens!);
    }

    public static TokenList ParseLines(string text, string source)
    {
        var lines = text.Split('\n');
        var count = lines.Length;
        while (count > 0 && lines[count - 1].TrimEnd('\r').Length == 0) count--; // a final newline is not a token
        if (count == 0) throw new InvalidDataException($"{source}: the token list is empty. Use the tokens file shipped with the model.");
        var tokens = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            var line = lines[i].TrimEnd('\r');
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0)
                throw new InvalidDataException($"{source}: line {i + 1} is empty; every line is one token (optionally followed by its id). Use the tokens file shipped with the model.");
            if (fields.Length == 2 && int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                if (id != i)
                    throw new InvalidDataException($"{source}: line {i + 1} gives token '{fields[0]}' the id {id}; ids must count up from 0 in line order. Use the tokens file shipped with the model.");
                tokens.Add(fields[0]);
            }
            else if (fields.Length == 1) tokens.Add(fields[0]);
            else
                throw new InvalidDataException($"{source}: line {i + 1} ('{line}') is not one token, or a token and its id. Use the tokens file shipped with the model.");
        }
        return new TokenList(tokens);
    }
}
