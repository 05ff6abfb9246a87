using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;

namespace Workers.Core.Options;

/// <summary>
/// Accepted ranges declared once, as <see cref="RangeAttribute"/>s on an options class's properties:
/// checked here, and named in the message for a value that does not even parse
/// (<see cref="Describe"/>), so both say the same range.
/// </summary>
public static class SettingRanges
{
    /// <summary>"Section:Property must be within min..max (is value)" for each property out of its range.</summary>
    public static IReadOnlyList<string> Check(object options, string section)
    {
        var problems = new List<string>();
        foreach (var p in options.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.GetCustomAttribute<RangeAttribute>() is not { } range) continue;
            var value = p.GetValue(options);
            if (!range.IsValid(value))
                problems.Add($"{section}:{p.Name} must be {Range(range)} (is {Convert.ToString(value, CultureInfo.InvariantCulture)}).");
        }
        return problems;
    }

    /// <summary>What a property accepts, in words: "a whole number within 0..256", "a number within 0.1..86400", "true or false".</summary>
    public static string Describe(PropertyInfo property)
    {
        var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        var kind = type == typeof(int) || type == typeof(long) ? "a whole number"
            : type == typeof(double) || type == typeof(float) || type == typeof(decimal) ? "a number"
            : type == typeof(bool) ? "true or false"
            : type == typeof(TimeSpan) ? "a duration (hh:mm:ss)"
            : type.IsEnum ? "one of " + string.Join(", ", Enum.GetNames(type))
            : "a " + type.Name;
        return property.GetCustomAttribute<RangeAttribute>() is { } range ? $"{kind} within {Bounds(range)}" : kind;
    }

    private static string Range(RangeAttribute r) => "within " + Bounds(r);

    private static string Bounds(RangeAttribute r) =>
        $"{Convert.ToString(r.Minimum, CultureInfo.InvariantCulture)}..{Convert.ToString(r.Maximum, CultureInfo.InvariantCulture)}";
}
