using System.Runtime.InteropServices;
using System.Text;

namespace Workers.Onnx.Native;

/// <summary>UTF-8 helpers for the few strings that cross into ORT outside the hot path.</summary>
internal static class Utf8
{
    /// <summary>Null-terminated UTF-8 bytes, for a <c>fixed</c> block.</summary>
    public static byte[] Z(string s)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }

    public static unsafe string Read(byte* p) => Marshal.PtrToStringUTF8((nint)p) ?? "";
}

/// <summary>An array of null-terminated UTF-8 strings in one native block, laid out as a
/// <c>const char* const*</c>: encoded once, then handed to ORT on every call without copying.</summary>
internal sealed unsafe class NativeUtf8Array : IDisposable
{
    private readonly NativeMemoryHandle memory;

    public NativeUtf8Array(IReadOnlyList<string> strings)
    {
        Count = strings.Count;
        var pointersBytes = (nuint)(Count * sizeof(byte*));
        nuint textBytes = 0;
        foreach (var s in strings) textBytes += (nuint)Encoding.UTF8.GetByteCount(s) + 1;
        memory = NativeMemoryHandle.Allocate(pointersBytes + textBytes);

        var pointers = (byte**)memory.Ptr;
        var text = (byte*)memory.Ptr + pointersBytes;
        for (var i = 0; i < Count; i++)
        {
            var n = Encoding.UTF8.GetByteCount(strings[i]);
            Encoding.UTF8.GetBytes(strings[i], new Span<byte>(text, n));
            text[n] = 0;
            pointers[i] = text;
            text += n + 1;
        }
    }

    public int Count { get; }

    /// <summary>The block itself, for holders that must keep it alive.</summary>
    public NativeMemoryHandle Memory => memory;

    /// <summary>The <c>char**</c>; valid until disposed.</summary>
    public byte** Pointers => (byte**)memory.Ptr;

    public void Dispose() => memory.Dispose();
}
