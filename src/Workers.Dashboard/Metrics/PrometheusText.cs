using System.Globalization;
using System.Text;

namespace Workers.Dashboard.Metrics;

/// <summary>Writes the Prometheus text exposition format (version 0.0.4): HELP and TYPE once per family, then samples.</summary>
public sealed class PrometheusText
{
    private readonly StringBuilder _sb = new();

    public PrometheusText Family(string name, string type, string help)
    {
        _sb.Append("# HELP ").Append(name).Append(' ').Append(help.Replace("\\", "\\\\").Replace("\n", "\\n")).Append('\n');
        _sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        return this;
    }

    public PrometheusText Sample(string name, double value, params (string Name, string Value)[] labels)
    {
        _sb.Append(name);
        if (labels.Length > 0)
        {
            _sb.Append('{');
            for (var i = 0; i < labels.Length; i++)
            {
                if (i > 0) _sb.Append(',');
                _sb.Append(labels[i].Name).Append("=\"").Append(Escape(labels[i].Value)).Append('"');
            }
            _sb.Append('}');
        }
        _sb.Append(' ').Append(Format(value)).Append('\n');
        return this;
    }

    public override string ToString() => _sb.ToString();

    private static string Escape(string v) => v.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    private static string Format(double v) =>
        double.IsNaN(v) ? "NaN" : double.IsPositiveInfinity(v) ? "+Inf" : double.IsNegativeInfinity(v) ? "-Inf" : v.ToString("R", CultureInfo.InvariantCulture);
}
