using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Workers.Stages;

/// <summary>
/// Fixed buckets (<see cref="ModelStageOptions.Buckets"/>): every batch padded to one of a few shapes, so
/// that a session capturing CUDA graphs (ORT's <c>enable_cuda_graph</c>) sees the same shapes and the same
/// buffers on every run. Each bucket owns one <see cref="OrtIoBinding"/> and one set of input and output
/// buffers, bound once when the bucket is built: a batch is written into its bucket's buffers and run,
/// nothing is allocated or bound per batch. On CUDA the bucket binds device copies (allocated once from the
/// session's CUDA allocator) and copies the inputs in and the outputs out around each run, since a CPU
/// buffer bound to a CUDA session is copied when bound, not when run (the same rule as
/// <see cref="Workers.Onnx.OnnxRunBinding"/>). Each bucket runs under its own graph id
/// (<c>gpu_graph_id</c>); a batch outside the buckets runs with graphs off. A model whose output has an
/// axis the data decides (Paraformer's <c>logits_length</c>) gets its outputs from ORT run by run: no
/// buffer of one shape can hold them, and such a stage is refused with CUDA graphs.
/// </summary>
public sealed partial class ModelStage
{
    /// <summary>ORT's run option naming the CUDA graph to capture or replay (<c>kOrtRunOptionsConfigCudaGraphAnnotation</c>); 0 is ORT's own.</summary>
    private const string GraphIdKey = "gpu_graph_id";

    /// <summary><see cref="GraphIdKey"/>'s value for a run without capture or replay.</summary>
    private const string GraphsOff = "-1";

    private int[] _bucketSamples = [];   // per bucket: its length in samples (what pieces are measured in)
    private int[] _bucketLengths = [];   // per bucket: the model's length axis (samples, or feature frames for fbank)
    private BucketBinding?[] _buckets = [];
    private int _lastGraphId;

    /// <summary>The buckets in use, in seconds (empty: each batch is padded to its longest row).</summary>
    public IReadOnlyList<double> Buckets { get; private set; } = [];

    /// <summary>Bucket bindings built over this stage's life: one per bucket used, plus one per bucket rebuilt
    /// smaller after running out of memory. Never one per batch.</summary>
    public int BucketBindingsCreated { get; private set; }

    private void InitBuckets(IReadOnlyList<double> seconds)
    {
        Buckets = [.. seconds];
        _bucketSamples = [.. seconds.Select(s => (int)Math.Round(s * ModelStageOptions.SampleRate))];
        _bucketLengths = [.. _bucketSamples.Select(n => _fbank is null ? n : _fbank.OutputFrames(n))];
        _buckets = new BucketBinding?[seconds.Count];
        if (_bucketLengths.Any(l => l < 1))
            throw Config($"Buckets {string.Join(", ", seconds)} s: the shortest gives no feature frame (a frame is {_o.Fbank.FrameLengthMs} ms); use buckets of at least a second");
    }

    /// <summary>Rows of bucket <paramref name="b"/>'s batches: as many of its length as BatchSeconds holds, within the row cap.</summary>
    private int BucketRows(int b) =>
        _fixedRows > 0 ? _fixedRows : (int)Math.Clamp(BatchSamples / _bucketSamples[b], 1, RowCap);

    /// <summary>Each piece to the smallest bucket that holds it, sorted by length, in batches of the bucket's rows;
    /// then the pieces longer than every bucket, one batch each (run without a bucket).</summary>
    private IEnumerable<(int Bucket, StagePiece[] Batch)> BucketBatches(List<StagePiece> pieces)
    {
        var groups = new List<StagePiece>[_bucketSamples.Length];
        var alone = new List<StagePiece>();
        foreach (var p in pieces)
        {
            var b = Array.FindIndex(_bucketSamples, n => n >= p.Length);
            if (b < 0) alone.Add(p);
            else (groups[b] ??= []).Add(p);
        }
        for (var b = 0; b < groups.Length; b++)
        {
            if (groups[b] is not { } group) continue;
            var sorted = group.OrderBy(p => p.Length).ThenBy(p => p.Segment).ThenBy(p => p.Offset).ToArray();
            foreach (var batch in sorted.Chunk(BucketRows(b))) yield return (b, batch);
        }
        foreach (var p in alone) yield return (-1, [p]);
    }

    /// <summary>Bucket <paramref name="b"/>'s binding, built on first use, and rebuilt when out-of-memory halving lowered its rows.</summary>
    private BucketBinding Bucket(int b)
    {
        var rows = BucketRows(b);
        if (_buckets[b] is { } existing && existing.Rows == rows) return existing;
        _buckets[b]?.Dispose();
        _buckets[b] = null;
        var built = new BucketBinding(this, rows, _bucketLengths[b], ++_lastGraphId);
        BucketBindingsCreated++;
        return _buckets[b] = built;
    }

    /// <summary>Builds bucket <paramref name="b"/> and runs it on zeros: twice with CUDA graphs (ORT runs once before it captures), else once.</summary>
    private void WarmUpBucket(int b)
    {
        var bucket = Bucket(b);
        for (var i = 0; i < (_device.CudaGraphs ? 2 : 1); i++) bucket.Run()?.Dispose();
    }

    private void DisposeBuckets()
    {
        foreach (var b in _buckets) b?.Dispose();
        Array.Clear(_buckets);
    }

    /// <summary>One bucket: inputs [rows, length(, width)] and every fetched output in buffers it owns, bound once (outputs
    /// only when their shape follows the input's; see <see cref="_dataDecidedAxis"/>).</summary>
    private sealed class BucketBinding : IDisposable
    {
        private readonly ModelStage _stage;
        private readonly OrtIoBinding _binding;
        private readonly RunOptions _run = new();
        private readonly List<OrtValue> _owned = [];
        private readonly List<OrtValue> _hostInputs = [], _deviceInputs = [], _deviceOutputs = [], _hostOutputs = [];
        private readonly List<(string Name, OrtValue Value)> _bound = [];

        public BucketBinding(ModelStage stage, int rows, int length, int graphId)
        {
            _stage = stage;
            Rows = rows;
            Length = length;
            var width = stage._fbank is null ? 1 : stage._featureWidth;
            Inputs.Grow(rows, length * width, stage);
            if (stage._device.CudaGraphs) _run.AddRunConfigEntry(GraphIdKey, graphId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            _binding = stage._session.CreateIoBinding();
            OrtAllocator? device = null;
            try
            {
                if (stage._device.Cuda)
                {
                    using var info = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, stage._device.CudaDeviceId, OrtMemType.Default);
                    device = new OrtAllocator(stage._session, info);
                }
                long[] shape = stage._fbank is null ? [rows, length] : [rows, length, width];
                var total = rows * length * width;
                BindInput(stage._input, stage._inputType == TensorElementType.Float
                    ? OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, Inputs.Samples.AsMemory(0, total), shape)
                    : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, Inputs.Samples16.AsMemory(0, total), shape), stage._inputType, shape, device);
                if (stage._lengths is not null)
                    BindInput(stage._lengths, stage._lengthsType == TensorElementType.Int64
                        ? OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, Inputs.Lengths64.AsMemory(0, rows), [rows])
                        : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, Inputs.Lengths32.AsMemory(0, rows), [rows]), stage._lengthsType, [rows], device);
                if (stage._mask is not null)
                    BindInput(stage._mask, stage._maskType == TensorElementType.Float
                        ? OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, Inputs.MaskFloats.AsMemory(0, rows * length), [rows, length])
                        : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, Inputs.MaskBools.AsMemory(0, rows * length), [rows, length]), stage._maskType, [rows, length], device);

                // The outputs' shapes come from the model: one run on zeros with ORT allocating them (and no graph
                // captured), then buffers of those shapes are bound for good. An output with an axis the data decides
                // cannot have a buffer of one shape: it stays bound to CPU memory ORT allocates run by run.
                foreach (var name in stage._fetch) _binding.BindOutputToDevice(name, OrtMemoryInfo.DefaultInstance);
                if (stage._dataDecidedAxis is not null)
                {
                    _binding.SynchronizeBoundInputs();
                    return;
                }
                CopyIn();
                long[][] shapes;
                TensorElementType[] types;
                using (var probe = stage.RunBinding(_binding, stage._run)) (shapes, types) = Describe(probe);
                _binding.ClearBoundOutputs();
                var outputs = new OrtValue[stage._fetch.Length];
                for (var i = 0; i < outputs.Length; i++)
                {
                    outputs[i] = HostTensor(types[i], shapes[i]);
                    _owned.Add(outputs[i]);
                    _binding.BindOutput(stage._fetch[i], Place(outputs[i], types[i], shapes[i], device, output: true));
                }
                OutputValues = outputs;
                OutputShapes = shapes;
                OutputTypes = types;
                _binding.SynchronizeBoundInputs();
            }
            catch
            {
                Dispose();
                throw;
            }
            finally
            {
                device?.Dispose();
            }
        }

        public int Rows { get; }

        public int Length { get; }

        public StageInputs Inputs { get; } = new();

        public IReadOnlyList<OrtValue> OutputValues { get; private set; } = [];

        public IReadOnlyList<long[]> OutputShapes { get; private set; } = [];

        public IReadOnlyList<TensorElementType> OutputTypes { get; private set; } = [];

        /// <summary>Runs over what <see cref="Inputs"/> holds now. The outputs land in <see cref="OutputValues"/>, or, for a
        /// model with an output axis the data decides, come back as ORT allocated them (the caller disposes them).</summary>
        public IDisposableReadOnlyCollection<OrtValue>? Run()
        {
            CopyIn();
            try
            {
                if (!_stage._deviceKnown)
                {
                    // The provider is unknown: bind the (same) input buffers again, so that a CUDA session copies what they hold now.
                    _binding.ClearBoundInputs();
                    foreach (var (name, value) in _bound) _binding.BindInput(name, value);
                }
                if (_stage._dataDecidedAxis is not null)
                {
                    // Bound again each run: ORT keeps a run's outputs in the binding and would hand them to the next
                    // run as buffers of that shape.
                    _binding.ClearBoundOutputs();
                    foreach (var name in _stage._fetch) _binding.BindOutputToDevice(name, OrtMemoryInfo.DefaultInstance);
                    _stage._session.RunWithBinding(_run, _binding);
                    return _binding.GetOutputValues();
                }
                _stage._session.RunWithBinding(_run, _binding);
                if (_deviceOutputs.Count > 0) OrtEnv.Instance().CopyTensors(_deviceOutputs, _hostOutputs, null);
                return null;
            }
            catch (OnnxRuntimeException e)
            {
                throw Workers.Onnx.OrtErrors.Translate(e, $"stage '{_stage._o.Name}': running model '{_stage._o.Model}'");
            }
        }

        private void CopyIn()
        {
            if (_deviceInputs.Count > 0) OrtEnv.Instance().CopyTensors(_hostInputs, _deviceInputs, null);
        }

        private void BindInput(string name, OrtValue host, TensorElementType type, long[] shape, OrtAllocator? device)
        {
            _owned.Add(host);
            var bound = Place(host, type, shape, device, output: false);
            _bound.Add((name, bound));
            _binding.BindInput(name, bound);
        }

        // On CPU the host buffer itself is bound; on CUDA a device tensor of the same type and shape, recorded
        // with its host twin for the copies around each run.
        private OrtValue Place(OrtValue host, TensorElementType type, long[] shape, OrtAllocator? device, bool output)
        {
            if (device is null) return host;
            var onDevice = OrtValue.CreateAllocatedTensorValue(device, type, shape);
            _owned.Add(onDevice);
            if (output)
            {
                _deviceOutputs.Add(onDevice);
                _hostOutputs.Add(host);
            }
            else
            {
                _hostInputs.Add(host);
                _deviceInputs.Add(onDevice);
            }
            return onDevice;
        }

        private static OrtValue HostTensor(TensorElementType type, long[] shape)
        {
            var n = (int)shape.Aggregate(1L, (a, d) => a * d);
            return type switch
            {
                TensorElementType.Float => OrtValue.CreateTensorValueFromMemory(new float[n], shape),
                TensorElementType.Float16 => OrtValue.CreateTensorValueFromMemory(new Float16[n], shape),
                TensorElementType.Int32 => OrtValue.CreateTensorValueFromMemory(new int[n], shape),
                TensorElementType.Int64 => OrtValue.CreateTensorValueFromMemory(new long[n], shape),
                _ => throw new NotSupportedException($"output of {type}: a stage reads float, float16, int32 or int64 outputs"),
            };
        }

        public void Dispose()
        {
            _binding.Dispose();
            _run.Dispose();
            foreach (var v in _owned) v.Dispose();
            _owned.Clear();
        }
    }
}
