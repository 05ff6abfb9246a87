using System.Buffers.Binary;
using System.Text;

namespace Workers.Stages.Models;

/// <summary>ONNX tensor element types (onnx.proto <c>TensorProto.DataType</c>) that the writer emits.</summary>
public enum OnnxDataType
{
    Float = 1,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
    Float16 = 10,
}

/// <summary>A tensor-valued node attribute (e.g. ConstantOfShape's <c>value</c>).</summary>
public sealed record TensorAttribute(OnnxDataType Type, long[] Shape, byte[] Raw)
{
    public static TensorAttribute Scalar(float value)
    {
        var raw = new byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(raw, value);
        return new(OnnxDataType.Float, [1], raw);
    }
}

/// <summary>
/// Writes a small ONNX model (a <c>ModelProto</c>, onnx.proto of ONNX 1.14, IR version 8, default
/// opset 17) straight as protobuf bytes: graph inputs and outputs with element type and shape
/// (a negative dimension is symbolic), constant initializers and nodes with int, ints, float and
/// tensor attributes. No protobuf library is needed for these few messages. It exists so that the
/// tests and <c>workers-bench pipeline</c> can make real models with known answers (no speech
/// model beyond Silero can be fetched here); ONNX Runtime loads what it writes like any export.
/// </summary>
public sealed class OnnxGraphWriter
{
    private readonly List<byte[]> _nodes = [];
    private readonly List<byte[]> _initializers = [];
    private readonly List<byte[]> _inputs = [];
    private readonly List<byte[]> _outputs = [];
    private int _next;

    /// <summary>Declares a graph input; a negative dimension gets a symbolic name by its position (d0, d1, ...), so
    /// that inputs and outputs share them (every row count is d0), as exports name their batch axis once.</summary>
    public string Input(string name, OnnxDataType type, params long[] shape)
    {
        _inputs.Add(ValueInfo(name, type, [.. shape.Select((d, i) => d >= 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"d{i}")]));
        return name;
    }

    /// <summary>Declares a graph output; a negative dimension is named as in <see cref="Input"/>.</summary>
    public void Output(string name, OnnxDataType type, params long[] shape) =>
        _outputs.Add(ValueInfo(name, type, [.. shape.Select((d, i) => d >= 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"d{i}")]));

    /// <summary>Declares a graph output with each dimension given as a number or a symbolic name (e.g. an axis the data
    /// decides, as FunASR names Paraformer's <c>logits_length</c>).</summary>
    public void OutputNamed(string name, OnnxDataType type, params string[] dims) => _outputs.Add(ValueInfo(name, type, dims));

    /// <summary>A float constant of the given shape.</summary>
    public string Floats(float[] values, params long[] shape)
    {
        var raw = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(i * 4), values[i]);
        return AddInitializer(OnnxDataType.Float, shape, raw);
    }

    /// <summary>An int64 constant of the given shape (a scalar when <paramref name="shape"/> is empty).</summary>
    public string Ints(long[] values, params long[] shape)
    {
        var raw = new byte[values.Length * 8];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(raw.AsSpan(i * 8), values[i]);
        return AddInitializer(OnnxDataType.Int64, shape, raw);
    }

    /// <summary>Adds a node; returns the name of its (first) output.</summary>
    public string Node(string op, string[] inputs, params (string Name, object Value)[] attributes) =>
        NodeN(op, inputs, 1, attributes)[0];

    /// <summary>Adds a node with <paramref name="outputs"/> outputs; returns their names.</summary>
    public string[] NodeN(string op, string[] inputs, int outputs, params (string Name, object Value)[] attributes)
    {
        var names = Enumerable.Range(0, outputs).Select(_ => $"t{_next++}").ToArray();
        NodeTo(op, inputs, names, attributes);
        return names;
    }

    /// <summary>Adds a node writing to the given output names (e.g. a graph output).</summary>
    public void NodeTo(string op, string[] inputs, string[] outputs, params (string Name, object Value)[] attributes)
    {
        var w = new ProtoWriter();
        foreach (var i in inputs) w.String(1, i);
        foreach (var o in outputs) w.String(2, o);
        w.String(3, $"n{_nodes.Count}");
        w.String(4, op);
        foreach (var (name, value) in attributes) w.Message(5, Attribute(name, value));
        _nodes.Add(w.ToArray());
    }

    /// <summary>The model as ONNX bytes.</summary>
    public byte[] ToBytes(string graphName = "workers_test")
    {
        var g = new ProtoWriter();
        foreach (var n in _nodes) g.Message(1, n);
        g.String(2, graphName);
        foreach (var t in _initializers) g.Message(5, t);
        foreach (var i in _inputs) g.Message(11, i);
        foreach (var o in _outputs) g.Message(12, o);

        var opset = new ProtoWriter();
        opset.String(1, "");
        opset.Int(2, 17);

        var m = new ProtoWriter();
        m.Int(1, 8); // ir_version
        m.String(2, "workers");
        m.Message(7, g.ToArray());
        m.Message(8, opset.ToArray());
        return m.ToArray();
    }

    /// <summary>Writes the model to <paramref name="path"/> and returns the path.</summary>
    public string Save(string path)
    {
        File.WriteAllBytes(path, ToBytes());
        return path;
    }

    private string AddInitializer(OnnxDataType type, long[] shape, byte[] raw)
    {
        var name = $"c{_next++}";
        _initializers.Add(Tensor(name, type, shape, raw));
        return name;
    }

    private static byte[] Tensor(string name, OnnxDataType type, long[] shape, byte[] raw)
    {
        var t = new ProtoWriter();
        foreach (var d in shape) t.Int(1, d);
        t.Int(2, (int)type);
        t.String(8, name);
        t.Bytes(9, raw);
        return t.ToArray();
    }

    private static byte[] ValueInfo(string name, OnnxDataType type, string[] shape)
    {
        var dims = new ProtoWriter();
        foreach (var dim in shape)
        {
            var d = new ProtoWriter();
            if (long.TryParse(dim, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)) d.Int(1, value);
            else d.String(2, dim);
            dims.Message(1, d.ToArray());
        }
        var tensor = new ProtoWriter();
        tensor.Int(1, (int)type);
        tensor.Message(2, dims.ToArray());
        var typeProto = new ProtoWriter();
        typeProto.Message(1, tensor.ToArray());
        var v = new ProtoWriter();
        v.String(1, name);
        v.Message(2, typeProto.ToArray());
        return v.ToArray();
    }

    private static byte[] Attribute(string name, object value)
    {
        var a = new ProtoWriter();
        a.String(1, name);
        switch (value)
        {
            case float f:
                a.Float(2, f);
                a.Int(20, 1);
                break;
            case int or long:
                a.Int(3, Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));
                a.Int(20, 2);
                break;
            case long[] ints:
                foreach (var i in ints) a.Int(8, i);
                a.Int(20, 7);
                break;
            case OnnxDataType dt:
                a.Int(3, (int)dt);
                a.Int(20, 2);
                break;
            case TensorAttribute t:
                a.Message(5, Tensor("value", t.Type, t.Shape, t.Raw));
                a.Int(20, 4);
                break;
            default:
                throw new ArgumentException($"attribute {name}: values of type {value.GetType().Name} are not supported", nameof(value));
        }
        return a.ToArray();
    }

    /// <summary>The protobuf wire format for the field kinds ONNX models use: varints, length-delimited, fixed32.</summary>
    private sealed class ProtoWriter
    {
        private readonly MemoryStream _s = new();

        public void Int(int field, long value)
        {
            Tag(field, 0);
            Varint((ulong)value);
        }

        public void Float(int field, float value)
        {
            Tag(field, 5);
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteSingleLittleEndian(b, value);
            _s.Write(b);
        }

        public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public void Message(int field, byte[] message) => Bytes(field, message);

        public void Bytes(int field, byte[] value)
        {
            Tag(field, 2);
            Varint((ulong)value.Length);
            _s.Write(value);
        }

        public byte[] ToArray() => _s.ToArray();

        private void Tag(int field, int wireType) => Varint((ulong)((field << 3) | wireType));

        private void Varint(ulong v)
        {
            while (v >= 0x80)
            {
                _s.WriteByte((byte)(v | 0x80));
                v >>= 7;
            }
            _s.WriteByte((byte)v);
        }
    }
}
