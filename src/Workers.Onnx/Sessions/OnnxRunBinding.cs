using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Workers.Onnx.Native;

namespace Workers.Onnx;

/// <summary>Runs one session over tensors bound once: the name and value arrays ORT's Run takes are
/// built in native memory when something is bound, so <see cref="Run"/> only makes the call. Outputs
/// are preallocated tensors ORT writes into, so a run allocates nothing on the managed heap. Not
/// thread-safe; create one binding per thread.</summary>
/// <remarks>Binding takes a reference on the session and on each tensor (SafeHandle.DangerousAddRef),
/// so disposing either while this binding is alive cannot free memory ORT still writes to; the
/// native objects go when the last holder lets go.</remarks>
public sealed unsafe class OnnxRunBinding : IDisposable
{
    private readonly OnnxSession session;
    private readonly OrtTensor?[] inputs;
    private readonly OrtTensor?[] outputs;
    private readonly NativeMemoryHandle arrays;
    private readonly byte** inputNames;
    private readonly OrtValue** inputValues;
    private readonly byte** outputNames;
    private readonly OrtValue** outputValues;
    private readonly OrtSession* sessionPtr;
    private nuint inputCount;
    private nuint outputCount;
    private bool ready;
    private bool disposed;

    internal OnnxRunBinding(OnnxSession session)
    {
        this.session = session;
        inputs = new OrtTensor?[session.Inputs.Count];
        outputs = new OrtTensor?[session.Outputs.Count];
        var slots = (2 * inputs.Length) + (2 * outputs.Length);
        arrays = NativeMemoryHandle.Allocate((nuint)(slots * sizeof(void*)));
        var p = (void**)arrays.Ptr;
        inputNames = (byte**)p;
        inputValues = (OrtValue**)(p + inputs.Length);
        outputNames = (byte**)(p + (2 * inputs.Length));
        outputValues = (OrtValue**)(p + (2 * inputs.Length) + outputs.Length);

        var refs = 0;
        try
        {
            AddRef(session.Handle);
            refs++;
            AddRef(session.InputNames.Memory);
            refs++;
            AddRef(session.OutputNames.Memory);
            refs++;
        }
        catch
        {
            if (refs > 0) session.Handle.DangerousRelease();
            if (refs > 1) session.InputNames.Memory.DangerousRelease();
            arrays.Dispose();
            throw;
        }
        sessionPtr = session.Ptr;
    }

    public OnnxSession Session => session;

    /// <summary>Uses <paramref name="tensor"/> as input <paramref name="name"/> on every run.</summary>
    public void BindInput(string name, OrtTensor tensor) => Bind(inputs, session.Inputs, session.InputIndex(name), tensor, "input");

    /// <summary>ORT writes output <paramref name="name"/> into <paramref name="tensor"/> on every run.
    /// Only bound outputs are computed-and-returned; leave out the ones you do not need.</summary>
    public void BindOutput(string name, OrtTensor tensor) => Bind(outputs, session.Outputs, session.OutputIndex(name), tensor, "output");

    /// <summary>True once every input and at least one output is bound.</summary>
    public bool IsReady => ready;

    /// <summary>Runs the model over the bound tensors. Allocates nothing on the managed heap.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Run()
    {
        if (!ready) ThrowNotReady();
        var status = OrtLibrary.Api->Run(sessionPtr, null, inputNames, inputValues, inputCount, outputNames, outputCount, outputValues);
        if (status != null) ThrowRunFailed(status);
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        ready = false;
        foreach (var t in inputs) t?.Handle.DangerousRelease();
        foreach (var t in outputs) t?.Handle.DangerousRelease();
        Array.Clear(inputs);
        Array.Clear(outputs);
        session.OutputNames.Memory.DangerousRelease();
        session.InputNames.Memory.DangerousRelease();
        session.Handle.DangerousRelease();
        arrays.Dispose();
    }

    private void Bind(OrtTensor?[] slots, IReadOnlyList<OnnxNodeInfo> nodes, int index, OrtTensor tensor, string what)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentNullException.ThrowIfNull(tensor);
        var node = nodes[index];
        if (node.ElementType != tensor.ElementType)
            throw new ArgumentException(
                $"{what} '{node.Name}' of {Path.GetFileName(session.ModelPath)} is {TensorElementTypes.Name(node.ElementType)}, the tensor is {TensorElementTypes.Name(tensor.ElementType)}.");
        var shape = tensor.Shape;
        var fits = shape.Length == node.Shape.Count;
        for (var d = 0; fits && d < shape.Length; d++) fits = node.Shape[d] < 0 || node.Shape[d] == shape[d];
        if (!fits)
            throw new ArgumentException(
                $"{what} '{node.Name}' of {Path.GetFileName(session.ModelPath)} has shape {node.ShapeText}; the tensor's {tensor.ShapeText} does not fit it.");

        AddRef(tensor.Handle);
        slots[index]?.Handle.DangerousRelease();
        slots[index] = tensor;
        Rebuild();
    }

    // Packs the bound tensors, in model order, into the arrays Run hands to ORT.
    private void Rebuild()
    {
        nuint n = 0;
        var allInputs = true;
        for (var i = 0; i < inputs.Length; i++)
        {
            if (inputs[i] is not { } t)
            {
                allInputs = false;
                continue;
            }
            inputNames[n] = session.InputNames.Pointers[i];
            inputValues[n] = t.Handle.Ptr;
            n++;
        }
        inputCount = n;
        n = 0;
        for (var i = 0; i < outputs.Length; i++)
        {
            if (outputs[i] is not { } t) continue;
            outputNames[n] = session.OutputNames.Pointers[i];
            outputValues[n] = t.Handle.Ptr;
            n++;
        }
        outputCount = n;
        ready = allInputs && outputCount > 0;
    }

    private static void AddRef(SafeHandle handle)
    {
        var added = false;
        handle.DangerousAddRef(ref added);
        if (!added) throw new ObjectDisposedException(handle.GetType().Name);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowNotReady()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var missing = session.Inputs.Where((n, i) => inputs[i] is null).Select(n => n.Name).ToList();
        throw new InvalidOperationException(missing.Count > 0
            ? $"Bind every input before running {Path.GetFileName(session.ModelPath)}; unbound: {string.Join(", ", missing)}."
            : $"Bind at least one output before running {Path.GetFileName(session.ModelPath)}.");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowRunFailed(OrtStatus* status) =>
        throw NativeApiStatus.ToException(status, $"Running {Path.GetFileName(session.ModelPath)}")!;
}
