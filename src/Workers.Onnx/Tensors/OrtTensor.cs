using System.Runtime.InteropServices;
using Ort = Microsoft.ML.OnnxRuntime;

namespace Workers.Onnx;

/// <summary>A CPU tensor over a 64-byte-aligned native buffer this object owns, wrapped once in an
/// <see cref="Ort.OrtValue"/> (CreateTensorValueWithData). Fill it through <see cref="OrtTensor{T}.Span"/>
/// and run it as often as you like: nothing is copied or allocated per run. Its shape is fixed; a
/// different batch size is a different tensor.</summary>
/// <remarks>The buffer and its OrtValue live in a <see cref="SafeHandle"/>: a binding takes a reference
/// on it (DangerousAddRef), so disposing the tensor while it is still bound cannot free memory ORT
/// still reads or writes; the memory goes when the last holder lets go.</remarks>
public abstract unsafe class OrtTensor : IDisposable
{
    private readonly long[] shape;

    private protected OrtTensor(TensorElementType elementType, long[] shape, long elementCount, int elementSize)
    {
        ElementType = elementType;
        this.shape = shape;
        ElementCount = elementCount;
        SizeInBytes = elementCount * elementSize;
        Handle = TensorBufferHandle.Allocate(elementType, shape, SizeInBytes);
    }

    public TensorElementType ElementType { get; }

    public ReadOnlySpan<long> Shape => shape;

    public long ElementCount { get; }

    public long SizeInBytes { get; }

    /// <summary>Start of the buffer; valid until disposed.</summary>
    public nint DataPointer => Handle.DangerousGetHandle();

    /// <summary>The OrtValue over the buffer, for the managed API (binding, CopyTensors).</summary>
    internal Ort.OrtValue Value => Handle.Value;

    internal TensorBufferHandle Handle { get; }

    internal long[] ShapeArray => shape;

    private protected void* Data => (void*)Handle.DangerousGetHandle();

    public string ShapeText => "[" + string.Join(", ", shape) + "]";

    /// <summary>True once disposed (the memory may live on while a binding still holds it).</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>Releases the OrtValue and frees the buffer, once no binding holds it any more.</summary>
    public void Dispose()
    {
        IsDisposed = true;
        Handle.Dispose();
    }

    /// <summary>Allocates a zeroed tensor of <paramref name="elementType"/> read from a model (so a
    /// float16 export gets float16 buffers). The environment must exist (<see cref="OrtEnvironment.Load"/>).</summary>
    public static OrtTensor Allocate(TensorElementType elementType, params ReadOnlySpan<long> shape) => elementType switch
    {
        TensorElementType.Float => OrtTensor<float>.Allocate(shape),
        TensorElementType.Float16 => OrtTensor<Half>.Allocate(shape),
        TensorElementType.Double => OrtTensor<double>.Allocate(shape),
        TensorElementType.Int64 => OrtTensor<long>.Allocate(shape),
        TensorElementType.Int32 => OrtTensor<int>.Allocate(shape),
        TensorElementType.Int16 => OrtTensor<short>.Allocate(shape),
        TensorElementType.Int8 => OrtTensor<sbyte>.Allocate(shape),
        TensorElementType.UInt8 => OrtTensor<byte>.Allocate(shape),
        TensorElementType.UInt16 => OrtTensor<ushort>.Allocate(shape),
        TensorElementType.UInt32 => OrtTensor<uint>.Allocate(shape),
        TensorElementType.UInt64 => OrtTensor<ulong>.Allocate(shape),
        TensorElementType.Bool => OrtTensor<bool>.Allocate(shape),
        _ => throw new NotSupportedException($"Tensors of {TensorElementTypes.Name(elementType)} are not supported; use a model exported with float32, float16 or integer tensors."),
    };

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

    /// <summary>Allocates a zeroed tensor of <paramref name="shape"/>.</summary>
    public static OrtTensor<T> Allocate(params ReadOnlySpan<long> shape) => new(shape.ToArray());
}

/// <summary>Owns a tensor's aligned native buffer and the OrtValue over it; released (value first,
/// then the buffer) when the tensor and every binding holding a reference have let go.</summary>
internal sealed unsafe class TensorBufferHandle : SafeHandle
{
    private TensorBufferHandle()
        : base(IntPtr.Zero, ownsHandle: true)
    {
    }

    public Ort.OrtValue Value { get; private set; } = null!;

    public override bool IsInvalid => handle == IntPtr.Zero;

    public static TensorBufferHandle Allocate(TensorElementType elementType, long[] shape, long bytes)
    {
        var buffer = NativeMemory.AlignedAlloc((nuint)(bytes == 0 ? 1 : bytes), 64);
        NativeMemory.Clear(buffer, (nuint)bytes);
        var result = new TensorBufferHandle();
        result.SetHandle((IntPtr)buffer);
        try
        {
            result.Value = Ort.OrtValue.CreateTensorValueWithData(
                Ort.OrtMemoryInfo.DefaultInstance, (Microsoft.ML.OnnxRuntime.Tensors.TensorElementType)elementType, shape, (IntPtr)buffer, bytes);
        }
        catch (Ort.OnnxRuntimeException e)
        {
            result.Dispose();
            throw OrtErrors.Translate(e, "Creating a tensor over a native buffer");
        }
        return result;
    }

    protected override bool ReleaseHandle()
    {
        Value?.Dispose();
        NativeMemory.AlignedFree((void*)handle);
        return true;
    }
}
