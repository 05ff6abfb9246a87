using System.Runtime.CompilerServices;
using Ort = Microsoft.ML.OnnxRuntime;

namespace Workers.Onnx;

/// <summary>Runs one session over tensors bound once, through the managed API's <see cref="Ort.OrtIoBinding"/>:
/// names and values are handed to ORT when something is bound, so <see cref="Run"/> only makes the call
/// (RunWithBinding) and allocates nothing on the managed heap. Outputs are preallocated tensors ORT
/// writes into. Not thread-safe; create one binding per thread.</summary>
/// <remarks>
/// <para>Binding takes a reference on each tensor's buffer (SafeHandle.DangerousAddRef), so disposing a
/// tensor while this binding is alive cannot free memory ORT still reads or writes.</para>
/// <para>On CUDA a CPU buffer bound as input is copied to the device when it is bound, so later writes
/// into it would not be seen. When the session runs on CUDA this binding therefore binds device copies
/// of its tensors (allocated once, from the session's CUDA allocator) and copies the inputs to the device
/// and the outputs back around each run (OrtEnv.CopyTensors). The device buffers never move, which is
/// also what a captured CUDA graph (<see cref="OnnxSessionOptions.EnableCudaGraph"/>) needs.</para>
/// </remarks>
public sealed class OnnxRunBinding : IDisposable
{
    private readonly OnnxSession session;
    private readonly OrtTensor?[] inputs;
    private readonly OrtTensor?[] outputs;
    private readonly Ort.OrtIoBinding binding;
    private readonly List<Ort.OrtValue> deviceValues = [];
    private readonly List<Ort.OrtValue> hostInputs = [];
    private readonly List<Ort.OrtValue> deviceInputs = [];
    private readonly List<Ort.OrtValue> deviceOutputs = [];
    private readonly List<Ort.OrtValue> hostOutputs = [];
    private bool ready;
    private bool dirty;
    private bool disposed;

    internal OnnxRunBinding(OnnxSession session)
    {
        this.session = session;
        inputs = new OrtTensor?[session.Inputs.Count];
        outputs = new OrtTensor?[session.Outputs.Count];
        binding = session.Inner.CreateIoBinding();
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
        if (dirty) Rebind();
        try
        {
            if (deviceInputs.Count > 0) Ort.OrtEnv.Instance().CopyTensors(hostInputs, deviceInputs, null);
            session.Inner.RunWithBinding(session.RunOptions, binding);
            if (deviceOutputs.Count > 0) Ort.OrtEnv.Instance().CopyTensors(deviceOutputs, hostOutputs, null);
        }
        catch (Ort.OnnxRuntimeException e)
        {
            ThrowRunFailed(e);
        }
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        ready = false;
        binding.Dispose();
        DisposeDeviceValues();
        foreach (var t in inputs) t?.Handle.DangerousRelease();
        foreach (var t in outputs) t?.Handle.DangerousRelease();
        Array.Clear(inputs);
        Array.Clear(outputs);
        session.Release();
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

        var added = false;
        tensor.Handle.DangerousAddRef(ref added);
        if (!added) throw new ObjectDisposedException(tensor.GetType().Name);
        slots[index]?.Handle.DangerousRelease();
        slots[index] = tensor;
        dirty = true;
        ready = inputs.All(t => t is not null) && outputs.Any(t => t is not null);
    }

    // Hands the bound tensors to ORT's IoBinding, once after (re)binding, not per run.
    private void Rebind()
    {
        binding.ClearBoundInputs();
        binding.ClearBoundOutputs();
        DisposeDeviceValues();
        try
        {
            Ort.OrtAllocator? device = null;
            if (session.UsesCuda)
            {
                using var info = new Ort.OrtMemoryInfo(Ort.OrtMemoryInfo.allocatorCUDA, Ort.OrtAllocatorType.DeviceAllocator, session.Options.DeviceId, Ort.OrtMemType.Default);
                device = new Ort.OrtAllocator(session.Inner, info);
            }
            using (device)
            {
                for (var i = 0; i < inputs.Length; i++)
                    if (inputs[i] is { } t) binding.BindInput(session.Inputs[i].Name, Place(t, device, hostInputs, deviceInputs));
                for (var i = 0; i < outputs.Length; i++)
                    if (outputs[i] is { } t) binding.BindOutput(session.Outputs[i].Name, Place(t, device, deviceOutputs, hostOutputs, outputSide: true));
            }
        }
        catch (Ort.OnnxRuntimeException e)
        {
            throw OrtErrors.Translate(e, $"Binding tensors for {Path.GetFileName(session.ModelPath)}");
        }
        binding.SynchronizeBoundInputs();
        dirty = false;
    }

    // On CPU the tensor's own OrtValue is bound. On CUDA a device tensor of the same type and shape is
    // bound and the pair recorded for the copies around each run.
    private Ort.OrtValue Place(OrtTensor tensor, Ort.OrtAllocator? device, List<Ort.OrtValue> from, List<Ort.OrtValue> to, bool outputSide = false)
    {
        if (device is null) return tensor.Value;
        var onDevice = Ort.OrtValue.CreateAllocatedTensorValue(device, (Microsoft.ML.OnnxRuntime.Tensors.TensorElementType)tensor.ElementType, tensor.ShapeArray);
        deviceValues.Add(onDevice);
        if (outputSide)
        {
            from.Add(onDevice);
            to.Add(tensor.Value);
        }
        else
        {
            from.Add(tensor.Value);
            to.Add(onDevice);
        }
        return onDevice;
    }

    private void DisposeDeviceValues()
    {
        foreach (var v in deviceValues) v.Dispose();
        deviceValues.Clear();
        hostInputs.Clear();
        deviceInputs.Clear();
        deviceOutputs.Clear();
        hostOutputs.Clear();
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
    private void ThrowRunFailed(Ort.OnnxRuntimeException e) =>
        throw OrtErrors.Translate(e, $"Running {Path.GetFileName(session.ModelPath)}");
}
