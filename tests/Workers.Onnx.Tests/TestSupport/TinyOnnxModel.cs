using System.Text;

namespace Workers.Onnx.Tests;

/// <summary>Writes a one-node ONNX model (protobuf, by hand) with a chosen element type: enough to run
/// a float16 export through the session without any model tooling on the machine.</summary>
public static class TinyOnnxModel
{
    /// <summary><c>y = op(x, x)</c> over tensors of <paramref name="elementType"/> shaped [batch, <paramref name="width"/>].</summary>
    public static byte[] Binary(string op, TensorElementType elementType, int width)
    {
        var node = Message(w =>
        {
            w.String(1, "x");
            if (op != "Identity") w.String(1, "x");
            w.String(2, "y");
            w.String(3, "node");
            w.String(4, op);
        });
        var graph = Message(w =>
        {
            w.Bytes(1, node);
            w.String(2, "tiny");
            w.Bytes(11, ValueInfo("x", elementType, width));
            w.Bytes(12, ValueInfo("y", elementType, width));
        });
        return Message(w =>
        {
            w.Varint(1, 8);                                              // ir_version
            w.String(2, "workers-tests");                                // producer_name
            w.Bytes(7, graph);
            w.Bytes(8, Message(o => { o.String(1, ""); o.Varint(2, 17); })); // opset_import: ai.onnx 17
        });
    }

    private static byte[] ValueInfo(string name, TensorElementType type, int width) => Message(w =>
    {
        w.String(1, name);
        w.Bytes(2, Message(t => t.Bytes(1, Message(tensor =>
        {
            tensor.Varint(1, (int)type);
            tensor.Bytes(2, Message(shape =>
            {
                shape.Bytes(1, Message(d => d.String(2, "batch")));
                shape.Bytes(1, Message(d => d.Varint(1, width)));
            }));
        }))));
    });

    private static byte[] Message(Action<Writer> body)
    {
        var w = new Writer();
        body(w);
        return w.ToArray();
    }

    private sealed class Writer
    {
        private readonly MemoryStream stream = new();

        public void Varint(int field, long value)
        {
            Raw(((ulong)field << 3) | 0);
            Raw((ulong)value);
        }

        public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public void Bytes(int field, byte[] value)
        {
            Raw(((ulong)field << 3) | 2);
            Raw((ulong)value.Length);
            stream.Write(value);
        }

        public byte[] ToArray() => stream.ToArray();

        private void Raw(ulong v)
        {
            do
            {
                var b = (byte)(v & 0x7F);
                v >>= 7;
                stream.WriteByte(v == 0 ? b : (byte)(b | 0x80));
            }
            while (v != 0);
        }
    }
}
