using System.Runtime.InteropServices;
using Workers.Onnx.Native;

namespace Workers.Onnx;

/// <summary>A CPU tensor over a 64-byte-aligned native buffer this object owns, wrapped once in an
/// OrtValue (CreateTensorWithDataAsOrtValue). Fill it through <see cref="OrtTensor{T}.Span"/> and run
/// it as often as you like: nothing is copied or allocated per run. Its shape is fixed; a different
/// batch size is a different tensor.</summary>
public abstract unsafe class OrtTensor : IDisposable
{
    private readonly long[] shape;

    private protected OrtTensor(TensorElementType elementType, long[] shape, long elementCount, int elementSize)
    {
        ElementType = elementType;
        this.shape = shape;
        ElementCount = elementCount;
        var bytes = (nuint)(elementCount * elementSize);
        var buffer = NativeMemory.AlignedAlloc(bytes == 0 ? 1 : bytes, 64);
        NativeMemory.Clear(buffer, bytes);
        OrtValue* value = null;
        try
        {
            fixed (long* dims = shape)
            {
                NativeApiStatus.Check(
                    OrtLibrary.Api->CreateTensorWithDataAsOrtValue(OrtLibrary.CpuMemoryInfo, buffer, bytes, dims, (nuint)shape.Length, elementType, &value),
                    "Creating a tensor over a native buffer");
            }
        }
        catch
        {
            NativeMemory.AlignedFree(buffer);
            throw;
        }
        Handle = OrtTensorValueHandle.Own(value, buffer);
        Data = buffer;
    }

    public TensorElementType ElementType { get; }

    public ReadOnlySpan<long> Shape => shape;

    public long ElementCount { get; }

    /// <summary>Start of the buffer; valid until disposed.</summary>
    public nint DataPointer => (nint)Data;

    internal OrtTensorValueHandle Handle { get; }

    private protected void* Data { get; }

    public string ShapeText => "[" + string.Join(", ", shape) + "]";

    /// <summary>True once disposed (the memory may live on while a binding still holds it).</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>Releases the OrtValue and frees the buffer, once no binding holds it any more.</summary>
    public void Dispose()
    {
        IsDisposed = true;
        Handle.Dispose();
    }

    private protected static long CountElements(long[] shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"Tensor dimensions must be fixed and non-negative, got [{string.Join(", ", shape)}].", nameof(shape));
            n = checked(n * d);
        }
        if (n > int.MaxValue) throw new ArgumentException($"Tensor of {n} elements is too large for one Span.", nameof(shape));
        return n;
    }
}

/// <summary>A CPU tensor of <typeparamref name="T"/>; see <see cref="OrtTensor"/>.</summary>
public sealed unsafe class OrtTensor<T> : OrtTensor
    where T : unmanaged
{
    private OrtTensor(long[] shape)
        : base(TensorElementTypes.Of<T>(), shape, CountElements(shape), sizeof(T))
    {
    }

    /// <summary>The whole buffer, row-major.</summary>
    public Span<T> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            return new Span<T>(Data, (int)ElementCount);
        }
    }

    /// <summary>Allocates a zeroed tensor of <paramref name="shape"/>. ONNX Runtime must be loaded
    /// (<see cref="OrtEnvironment.Load"/>).</summary>
    public static OrtTensor<T> Allocate(params ReadOnlySpan<long> shape) => new(shape.ToArray());
}
