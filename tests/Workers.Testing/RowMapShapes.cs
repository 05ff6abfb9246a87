using System.Reflection;
using System.Text.RegularExpressions;
using Workers.Postgres.Sql;

namespace Workers.Testing;

/// <summary>
/// What the statement-shape tests share (Workers.Postgres' statements and the benches'): every
/// <see cref="RowMap"/> an assembly holds, and how the columns a statement returns differ from what
/// its row mapping reads.
/// </summary>
public static partial class RowMapShapes
{
    /// <summary>Every <see cref="RowMap"/> held in a static field of <paramref name="assembly"/>, found by reflection (so a new one is checked without registering it).</summary>
    public static List<RowMap> In(Assembly assembly) =>
        assembly.GetTypes()
            .Where(t => !t.ContainsGenericParameters)
            .SelectMany(t => t.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            .Where(f => typeof(RowMap).IsAssignableFrom(f.FieldType))
            .Select(f => (RowMap)f.GetValue(null)!)
            .ToList();

    /// <summary>One line per column where <paramref name="columns"/> (as the server describes the statement) differs from <paramref name="map"/>; none when they agree.</summary>
    public static IEnumerable<string> Compare(RowMap map, IReadOnlyList<(string Name, Type? Type)> columns)
    {
        var expected = map.Columns.Select(c => (c.Name, (Type?)c.Type)).ToList();
        if (expected.SequenceEqual(columns)) yield break;
        for (var i = 0; i < Math.Max(expected.Count, columns.Count); i++)
        {
            var want = i < expected.Count ? Show(expected[i]) : "nothing";
            var got = i < columns.Count ? Show(columns[i]) : "nothing";
            if (want != got)
                yield return $"{map.Statement}: column {i} is '{got}', its row mapping reads '{want}' there " +
                             $"(statement: {Show(columns)}; mapping: {Show(expected)}).";
        }
    }

    public static string Show(IEnumerable<(string Name, Type? Type)> cs) => "(" + string.Join(", ", cs.Select(Show)) + ")";

    private static string Show((string Name, Type? Type) c) => $"{c.Name} {c.Type?.Name ?? "(no CLR type)"}";

    /// <summary>The names of a statement's parameters (<c>@name</c>, not <c>@@</c> or <c>::</c> casts).</summary>
    public static IEnumerable<string> ParameterNames(string sql) => Parameter().Matches(sql).Select(m => m.Groups[1].Value).Distinct();

    [GeneratedRegex(@"(?<![@\w:])@([A-Za-z_]\w*)")]
    private static partial Regex Parameter();
}
