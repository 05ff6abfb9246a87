using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Workers.Stages;

/// <summary>
/// A stage result as stored (<c>segment_results.result</c>, jsonb) and exported: one property per kept
/// output, a vector as an array of numbers (shortest round-trip form), top-k as
/// <c>{"labels": [...], "scores": [...]}</c>, highest first (labels are the output's indices when none are
/// configured), text as a string (<c>"logits": "今天 weather"</c>; UTF-8 as is, only what JSON requires escaped).
/// </summary>
public static class StageResultFormat
{
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Json(IReadOnlyList<StageOutputOptions> outputs, StageResult result)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, Options))
        {
            w.WriteStartObject();
            for (var o = 0; o < outputs.Count; o++)
            {
                var keep = outputs[o];
                w.WritePropertyName(keep.Name);
                if (keep.IsText)
                {
                    w.WriteStringValue(result.Text(o) ?? "");
                    continue;
                }
                var values = result.Values[o];
                if (!keep.IsTopK)
                {
                    w.WriteStartArray();
                    foreach (var v in values) WriteNumber(w, v);
                    w.WriteEndArray();
                    continue;
                }
                var order = Enumerable.Range(0, values.Length).OrderByDescending(i => values[i]).ThenBy(i => i).Take(keep.TopK).ToList();
                w.WriteStartObject();
                w.WriteStartArray("labels");
                foreach (var i in order) w.WriteStringValue(i < keep.Labels.Count ? keep.Labels[i] : i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                w.WriteEndArray();
                w.WriteStartArray("scores");
                foreach (var i in order) WriteNumber(w, values[i]);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    // JSON has no NaN or infinity: a model that produces them gets null there, not a broken line.
    private static void WriteNumber(Utf8JsonWriter w, float v)
    {
        if (float.IsFinite(v)) w.WriteNumberValue(v);
        else w.WriteNullValue();
    }
}
