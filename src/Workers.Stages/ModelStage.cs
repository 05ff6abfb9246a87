using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Workers.Stages;

/// <summary>
/// A model stage: one ONNX Runtime session (the official managed API) over speech segments,
/// batched by seconds (<see cref="StageBatchPlanner"/>). Each batch is padded to its longest row
/// (or to the model's fixed shape, or to the smallest of <see cref="ModelStageOptions.Buckets"/> that
/// holds it) with zeros, and told the valid part through a lengths or mask input when the model has
/// one. Element types are read from the model: a float16 model gets float16 input and its float16
/// outputs are widened. Inputs are written into buffers owned by the stage (grown only when a batch
/// needs more, never per run) and bound with <see cref="OrtIoBinding"/>; outputs come from ORT's own
/// arena, except with buckets, where each bucket binds its inputs and outputs once, to buffers it
/// keeps (see ModelStage.Buckets.cs). Filterbank features get <see cref="ModelStageOptions.Cmvn"/>
/// after LFR; an output kept as text is decoded greedily with its token list. Out of memory halves
/// the batch and retries (<see cref="MaxRows"/> stays lowered); a batch of one out of memory throws.
/// Not thread-safe: one stage per worker thread.
/// </summary>
public sealed partial class ModelStage : IDisposable
{
    private readonly InferenceSession _session;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _run = new();
    private readonly ModelStageOptions _o;
    private readonly StageDevice _device;
    private readonly bool _deviceKnown; // false: the session may be on any provider, so bucket inputs are bound again per run
    private readonly KaldiFbank? _fbank;
    private readonly KaldiCmvn? _cmvn;
    private readonly string _input;
    private readonly TensorElementType _inputType;
    private readonly string? _lengths;
    private readonly TensorElementType _lengthsType;
    private readonly string? _mask;
    private readonly TensorElementType _maskType;
    private readonly int _fixedRows;   // 0: dynamic
    private readonly int _fixedLength; // 0: dynamic (samples, or frames for fbank)
    private readonly int _featureWidth;
    private readonly int _maxPiece;
    private readonly int _overlap;
    private readonly string[] _fetch;          // the outputs asked of the model: kept ones, then token counts
    private readonly KeptOutput[] _kept;       // per kept output: where its values (and token count) are in _fetch
    private readonly (string Output, string Axis)? _dataDecidedAxis; // a fetched output's axis the data decides, if any: no fixed output buffers then
    private readonly StageInputs _inputs = new();

    /// <param name="modelPath">The verified model file; a relative <see cref="StageFileOptions.File"/> is taken from its folder.</param>
    /// <param name="sessionOptions">Execution provider and threads; the stage does not own it.</param>
    /// <param name="device">Where <paramref name="sessionOptions"/> runs the model (CUDA device, CUDA graphs). When null the
    /// stage does not assume a provider: a bucket binds its inputs again before each run (a CPU buffer bound to a CUDA
    /// session is copied when bound), which is right everywhere but gives CUDA graphs no fixed input addresses.</param>
    public ModelStage(string modelPath, ModelStageOptions options, SessionOptions? sessionOptions = null, StageDevice? device = null)
    {
        var problems = options.Validate($"stage '{options.Name}'");
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems));
        _o = options;
        _device = device ?? StageDevice.Cpu;
        _deviceKnown = device is not null;
        // Everything the stage reads besides the model is checked before the model loads: a wrong file is cheaper to report.
        var folder = Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
        if (options.Cmvn is { } cmvnFile)
        {
            var path = cmvnFile.Resolve(folder, $"stage '{options.Name}': Cmvn");
            try { _cmvn = KaldiCmvn.Load(path); }
            catch (InvalidDataException e) { throw new StageConfigurationException($"stage '{options.Name}': Cmvn: {e.Message}", e); }
        }
        var tokens = new TokenList?[options.Outputs.Count];
        for (var i = 0; i < options.Outputs.Count; i++)
            if (options.Outputs[i] is { IsText: true, Tokens: { } tokenFile })
            {
                var path = tokenFile.Resolve(folder, $"stage '{options.Name}': Outputs:{i}:Tokens");
                try { tokens[i] = TokenList.Load(path); }
                catch (InvalidDataException e) { throw new StageConfigurationException($"stage '{options.Name}': Outputs:{i}:Tokens: {e.Message}", e); }
            }
        try
        {
            _session = sessionOptions is null ? new InferenceSession(modelPath) : new InferenceSession(modelPath, sessionOptions);
        }
        catch (OnnxRuntimeException e)
        {
            throw new StageConfigurationException($"stage '{options.Name}': ONNX Runtime cannot load model '{options.Model}' ({modelPath}): {e.Message}", e);
        }
        try
        {
            var inputs = _session.InputMetadata;
            _input = options.InputName ?? inputs.FirstOrDefault(kv => kv.Value.ElementDataType is TensorElementType.Float or TensorElementType.Float16).Key
                ?? throw Config("has no float or float16 input; set InputName");
            var audio = Meta(inputs, _input, "InputName");
            _inputType = audio.ElementDataType;
            if (_inputType is not (TensorElementType.Float or TensorElementType.Float16))
                throw Config($"input '{_input}' is {_inputType}; the stage feeds float or float16");
            var rank = options.IsFbank ? 3 : 2;
            if (audio.Dimensions.Length != rank)
                throw Config($"input '{_input}' has rank {audio.Dimensions.Length}; Input={options.Input} needs [B, {(options.IsFbank ? "frames, bins" : "T")}] (rank {rank})");
            _fixedRows = Math.Max(0, audio.Dimensions[0]);
            _fixedLength = Math.Max(0, audio.Dimensions[1]);
            if (options.IsFbank)
            {
                _fbank = new KaldiFbank(options.Fbank);
                _featureWidth = _fbank.Width;
                if (audio.Dimensions[2] > 0 && audio.Dimensions[2] != _featureWidth)
                    throw Config($"input '{_input}' takes {audio.Dimensions[2]} features per frame but Fbank gives {_featureWidth} (NumMelBins x LfrM); change Fbank:NumMelBins or LfrM");
                if (_cmvn is not null && _cmvn.Width != _featureWidth)
                    throw Config($"Cmvn file {options.Cmvn!.File} normalizes {_cmvn.Width} features per frame but Fbank gives {_featureWidth} (NumMelBins {options.Fbank.NumMelBins} x LfrM {options.Fbank.LfrM}); " +
                        "use the am.mvn shipped with this model, or the Fbank settings it was made for (Paraformer: NumMelBins 80, LfrM 7, LfrN 6 = 560)");
            }

            _lengths = options.LengthsInput;
            if (_lengths is null)
            {
                var ints = inputs.Where(kv => kv.Key != _input && kv.Key != options.MaskInput && kv.Value.Dimensions.Length == 1
                    && kv.Value.ElementDataType is TensorElementType.Int64 or TensorElementType.Int32).Select(kv => kv.Key).ToList();
                if (ints.Count == 1) _lengths = ints[0];
            }
            if (_lengths is not null)
            {
                _lengthsType = Meta(inputs, _lengths, "LengthsInput").ElementDataType;
                if (_lengthsType is not (TensorElementType.Int64 or TensorElementType.Int32)) throw Config($"lengths input '{_lengths}' is {_lengthsType}; it must be int64 or int32");
            }
            _mask = options.MaskInput;
            if (_mask is not null)
            {
                _maskType = Meta(inputs, _mask, "MaskInput").ElementDataType;
                if (_maskType is not (TensorElementType.Float or TensorElementType.Bool)) throw Config($"mask input '{_mask}' is {_maskType}; it must be float or bool");
            }
            var unfed = inputs.Keys.Where(k => k != _input && k != _lengths && k != _mask).ToList();
            if (unfed.Count > 0) throw Config($"inputs {string.Join(", ", unfed.Select(u => $"'{u}'"))} would get nothing; name them as LengthsInput or MaskInput, or use a model without them");

            var outputs = options.Outputs.Count > 0
                ? options.Outputs
                : [.. _session.OutputMetadata.Keys.Select(k => new StageOutputOptions { Name = k })];
            var fetch = new List<string>();
            int Fetch(string name) { var i = fetch.IndexOf(name); if (i < 0) { fetch.Add(name); i = fetch.Count - 1; } return i; }
            var kept = new KeptOutput[outputs.Count];
            for (var o = 0; o < outputs.Count; o++)
            {
                var out_ = outputs[o];
                var m = Meta(_session.OutputMetadata, out_.Name, "Outputs:Name");
                if (m.ElementDataType is not (TensorElementType.Float or TensorElementType.Float16)) throw Config($"output '{out_.Name}' is {m.ElementDataType}; a stage keeps float or float16 outputs");
                if (!out_.IsText)
                {
                    if (m.Dimensions.Length is not (1 or 2))
                        throw Config($"output '{out_.Name}' has rank {m.Dimensions.Length}; a stage keeps [B] or [B, D] outputs (one row per segment), or [B, T, V] logits as text (Keep 'text' with Tokens)");
                    kept[o] = new KeptOutput(out_, Fetch(out_.Name), -1, null, null);
                    continue;
                }
                if (m.Dimensions.Length != 3)
                    throw Config($"output '{out_.Name}' has rank {m.Dimensions.Length}; Keep 'text' decodes logits [B, T, V] (rank 3)");
                var list = tokens[o]!;
                if (m.Dimensions[2] > 0 && m.Dimensions[2] != list.Count)
                    throw Config($"output '{out_.Name}' has {m.Dimensions[2]} logits per frame but the token list {out_.Tokens!.File} has {list.Count} tokens; use the tokens file shipped with this model");
                var count = Meta(_session.OutputMetadata, out_.TokenNum, "TokenNum");
                if (count.Dimensions.Length != 1 || count.ElementDataType is not (TensorElementType.Int32 or TensorElementType.Int64))
                    throw Config($"TokenNum output '{out_.TokenNum}' is {count.ElementDataType} of rank {count.Dimensions.Length}; it must be int32 or int64 [B] (each row's number of tokens)");
                kept[o] = new KeptOutput(out_, Fetch(out_.Name), Fetch(out_.TokenNum), list, list.IdsOf(out_.DropTokens ?? StageOutputOptions.DefaultDropTokens));
            }
            Outputs = outputs;
            _kept = kept;
            _fetch = [.. fetch];
            // An output axis that is fixed, or named like an input axis (the batch, the frames), follows the input's shape;
            // any other (Paraformer's logits_length: the batch's most tokens) is decided by the data, run by run.
            var inputAxes = inputs.Values.SelectMany(m => m.SymbolicDimensions).Where(d => !string.IsNullOrEmpty(d)).ToHashSet(StringComparer.Ordinal);
            foreach (var name in _fetch)
            {
                var m = _session.OutputMetadata[name];
                var axis = Enumerable.Range(0, m.Dimensions.Length)
                    .FirstOrDefault(i => m.Dimensions[i] <= 0 && !inputAxes.Contains(m.SymbolicDimensions[i] ?? ""), -1);
                if (axis < 0) continue;
                _dataDecidedAxis = (name, m.SymbolicDimensions[axis] ?? "");
                break;
            }

            var sr = ModelStageOptions.SampleRate;
            _maxPiece = (int)Math.Round(options.MaxSegmentSeconds * sr);
            if (!options.IsFbank && _fixedLength > 0) _maxPiece = Math.Min(_maxPiece, _fixedLength);
            _overlap = (int)Math.Round(options.CutOverlapSeconds * sr);
            MaxRows = _fixedRows > 0 ? _fixedRows : options.MaxBatchSize;
            if (options.Buckets.Count > 0 && _fixedLength > 0)
                throw Config($"input '{_input}' has a fixed length ({_fixedLength}), so every batch already has one shape; remove Buckets");
            // With CUDA graphs a dynamic model gets the default buckets, and a fixed-shape waveform model runs as one
            // bucket of its own shape: either way every batch goes through a binding whose buffers never move.
            var buckets = options.Buckets.Count > 0 ? options.Buckets
                : !_device.CudaGraphs ? []
                : _fixedLength == 0 ? ModelStageOptions.DefaultBuckets(options.MaxSegmentSeconds)
                : !options.IsFbank ? [_fixedLength / (double)ModelStageOptions.SampleRate]
                : [];
            InitBuckets(buckets);
            if (_bucketSamples.Length > 0) _maxPiece = Math.Min(_maxPiece, _bucketSamples[^1]); // longer: a long segment, cut to it or run alone
            if (_bucketSamples.Length > 0 && _device.CudaGraphs && _dataDecidedAxis is var (output, axisName))
                throw Config($"output '{output}' has an axis its input's shape does not decide ('{axisName}'), so its shape changes from batch to batch " +
                    "even in a bucket, and a CUDA graph replays one shape; run this stage on a node with Inference:EnableCudaGraph off (buckets still apply there)");
            if (_device.CudaGraphs) _run.AddRunConfigEntry(GraphIdKey, GraphsOff); // batches outside the buckets run without a graph
            _binding = _session.CreateIoBinding();
        }
        catch
        {
            _session.Dispose();
            throw;
        }
    }

    public string Name => _o.Name;

    public ModelStageOptions Options => _o;

    /// <summary>The outputs kept, in the order of <see cref="StageResult.Values"/>.</summary>
    public IReadOnlyList<StageOutputOptions> Outputs { get; }

    /// <summary>The element type the model takes its audio or features in.</summary>
    public TensorElementType InputType => _inputType;

    /// <summary>Rows per batch at most: <see cref="ModelStageOptions.MaxBatchSize"/>, lowered by out-of-memory halving.</summary>
    public int MaxRows { get; private set; }

    /// <summary>Times a batch was halved after running out of memory, over this stage's life.</summary>
    public int OomRetries { get; private set; }

    /// <summary>Batches run, and their rows (padding rows of fixed-shape models included), over this stage's life.</summary>
    public int BatchesRun { get; private set; }

    /// <summary>The largest padded batch run so far, in samples (rows x longest row).</summary>
    public long LargestBatchSamples { get; private set; }

    /// <summary>Called with each batch's pieces before it runs (tests and benches look at the batching).</summary>
    public Action<IReadOnlyList<StagePiece>>? OnBatch { get; set; }

    /// <summary>Called with each batch's padded shape as the model gets it (tests look at the buckets).</summary>
    public Action<StageBatchShape>? OnShape { get; set; }

    private int RowCap => Math.Min(MaxRows, _fixedRows > 0 ? _fixedRows : int.MaxValue);

    private long BatchSamples => (long)Math.Round(_o.BatchSeconds * ModelStageOptions.SampleRate);

    /// <summary>Runs the model once on one second of zeros (or its fixed shape), so the first shard does not pay
    /// for it; with buckets, builds every bucket's binding and runs it (capturing its CUDA graph when they are on).</summary>
    public void WarmUp()
    {
        var zeros = new float[Math.Min(ModelStageOptions.SampleRate, _maxPiece)];
        if (_bucketSamples.Length == 0)
        {
            _ = Run([new StageSegment(0, zeros)]);
            return;
        }
        for (var b = 0; b < _bucketSamples.Length; b++) WarmUpBucket(b);
    }

    /// <summary>The stage's results, one per segment, in the order of <paramref name="segments"/>.</summary>
    public IReadOnlyList<StageResult> Run(IReadOnlyList<StageSegment> segments)
    {
        var lengths = segments.Select(s => s.Samples.Length).ToList();
        var pieces = StageBatchPlanner.Pieces(lengths, _maxPiece, _o.CutsLongSegments || _fixedLength > 0 && !_o.IsFbank, _overlap);
        var acc = new Accumulator(segments.Count, Outputs.Count);
        if (_bucketSamples.Length == 0)
            foreach (var batch in StageBatchPlanner.Batches(pieces, BatchSamples, RowCap))
                RunWithHalving(batch, -1, segments, acc);
        else
            foreach (var (bucket, batch) in BucketBatches(pieces))
                RunWithHalving(batch, bucket, segments, acc);
        return acc.Results(segments, _kept);
    }

    /// <summary>The stage's result as stored in <c>segment_results</c> and exported (<see cref="StageResultFormat"/>).</summary>
    public string FormatResult(StageResult result) => StageResultFormat.Json(Outputs, result);

    private void RunWithHalving(StagePiece[] batch, int bucket, IReadOnlyList<StageSegment> segments, Accumulator acc)
    {
        var cap = bucket < 0 ? RowCap : BucketRows(bucket);
        if (batch.Length > cap)
        {
            foreach (var part in batch.Chunk(cap)) RunWithHalving(part, bucket, segments, acc);
            return;
        }
        try
        {
            RunBatch(batch, bucket, segments, acc);
        }
        catch (Exception e) when (e is Workers.Onnx.OnnxOutOfMemoryException or OutOfMemoryException && Shrinkable(batch, bucket))
        {
            // Inference wrote nothing for this batch: run it again as two halves, and keep the lower size for the rest
            // (a bucket with more rows than that is rebuilt at the lower size when next used; a bucket's rows count even
            // when a batch fills only some of them, so one piece in a bucket of eight rows is retried in a bucket of four).
            OomRetries++;
            MaxRows = Math.Max(1, (bucket >= 0 && _fixedRows == 0 ? BucketRows(bucket) : batch.Length) / 2);
            if (batch.Length == 1)
            {
                RunWithHalving(batch, bucket, segments, acc);
                return;
            }
            var half = (batch.Length + 1) / 2;
            RunWithHalving(batch[..half], bucket, segments, acc);
            RunWithHalving(batch[half..], bucket, segments, acc);
        }
    }

    /// <summary>Whether running out of memory on this batch can be answered with fewer rows: more than one piece, or a
    /// bucket of more than one row whose row count is ours to lower (not a fixed-shape model's).</summary>
    private bool Shrinkable(StagePiece[] batch, int bucket) =>
        batch.Length > 1 || bucket >= 0 && _fixedRows == 0 && BucketRows(bucket) > 1;

    private void RunBatch(StagePiece[] batch, int bucket, IReadOnlyList<StageSegment> segments, Accumulator acc)
    {
        OnBatch?.Invoke(batch);
        float[][]? features = null;
        int longest;
        if (_fbank is not null)
        {
            features = new float[batch.Length][];
            for (var r = 0; r < batch.Length; r++)
            {
                features[r] = _fbank.Compute(segments[batch[r].Segment].Samples.Span.Slice(batch[r].Offset, batch[r].Length));
                _cmvn?.Apply(features[r]); // per row, before padding: padding stays zeros, as FunASR pads after its front end
            }
            longest = features.Max(f => f.Length / _featureWidth);
        }
        else longest = batch[^1].Length;
        var width = _fbank is null ? 1 : _featureWidth;

        if (bucket >= 0)
        {
            var b = Bucket(bucket);
            Fill(b.Inputs, batch, features, segments, b.Rows, b.Length, width);
            OnShape?.Invoke(new StageBatchShape(b.Rows, b.Length, Bucketed: true));
            using (var fresh = b.Run())
            {
                if (fresh is null) Collect(batch, b.OutputValues, b.OutputShapes, b.OutputTypes, acc);
                else
                {
                    var (freshShapes, freshTypes) = Describe(fresh);
                    Collect(batch, fresh, freshShapes, freshTypes, acc);
                }
            }
            Ran(batch, b.Rows, _fbank is null ? b.Length : _bucketSamples[bucket], acc);
            return;
        }

        var rows = _fixedRows > 0 ? _fixedRows : batch.Length;
        var length = _fixedLength > 0 ? _fixedLength : Math.Max(1, longest);
        _inputs.Grow(rows, length * width, this);
        Fill(_inputs, batch, features, segments, rows, length, width);
        OnShape?.Invoke(new StageBatchShape(rows, length, Bucketed: false));
        var total = rows * length * width;
        var shape = _fbank is null ? new long[] { rows, length } : [rows, length, width];
        var owned = new List<OrtValue>(3);
        try
        {
            _binding.ClearBoundInputs();
            _binding.ClearBoundOutputs();
            owned.Add(_inputType == TensorElementType.Float
                ? OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _inputs.Samples.AsMemory(0, total), shape)
                : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _inputs.Samples16.AsMemory(0, total), shape));
            _binding.BindInput(_input, owned[^1]);
            if (_lengths is not null)
            {
                owned.Add(_lengthsType == TensorElementType.Int64
                    ? OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _inputs.Lengths64.AsMemory(0, rows), [rows])
                    : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _inputs.Lengths32.AsMemory(0, rows), [rows]));
                _binding.BindInput(_lengths, owned[^1]);
            }
            if (_mask is not null)
            {
                var n = rows * length;
                owned.Add(_maskType == TensorElementType.Float
                    ? OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _inputs.MaskFloats.AsMemory(0, n), [rows, length])
                    : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _inputs.MaskBools.AsMemory(0, n), [rows, length]));
                _binding.BindInput(_mask, owned[^1]);
            }
            foreach (var name in _fetch) _binding.BindOutputToDevice(name, OrtMemoryInfo.DefaultInstance);
            using var values = RunBinding(_binding, _run);
            var (shapes, types) = Describe(values);
            Collect(batch, values, shapes, types, acc);
            Ran(batch, rows, _fbank is null ? length : batch[^1].Length, acc);
        }
        finally
        {
            foreach (var v in owned) v.Dispose();
        }
    }

    /// <summary>The shapes and element types of outputs ORT allocated in this run.</summary>
    private static (long[][] Shapes, TensorElementType[] Types) Describe(IReadOnlyList<OrtValue> values)
    {
        var shapes = new long[values.Count][];
        var types = new TensorElementType[values.Count];
        for (var i = 0; i < values.Count; i++)
        {
            var info = values[i].GetTensorTypeAndShape();
            (shapes[i], types[i]) = (info.Shape, info.ElementDataType);
        }
        return (shapes, types);
    }

    private void Ran(StagePiece[] batch, int rows, int rowSamples, Accumulator acc)
    {
        LargestBatchSamples = Math.Max(LargestBatchSamples, (long)rows * rowSamples);
        foreach (var p in batch) acc.Weights[p.Segment] += p.Length;
        BatchesRun++;
    }

    /// <summary>Writes a batch into <paramref name="to"/>: rows x length (x width) zeros with each row's valid part,
    /// its valid length, its mask, and the float16 copy when the model takes float16.</summary>
    private void Fill(StageInputs to, StagePiece[] batch, float[][]? features, IReadOnlyList<StageSegment> segments, int rows, int length, int width)
    {
        var rowSize = length * width;
        var total = rows * rowSize;
        Array.Clear(to.Samples, 0, total); // padding is zeros, never a previous batch's samples
        for (var r = 0; r < rows; r++)
        {
            var valid = 0;
            if (r < batch.Length)
            {
                if (features is not null)
                {
                    valid = Math.Min(length, features[r].Length / width);
                    features[r].AsSpan(0, valid * width).CopyTo(to.Samples.AsSpan(r * rowSize));
                }
                else
                {
                    var p = batch[r];
                    valid = Math.Min(length, p.Length);
                    segments[p.Segment].Samples.Span.Slice(p.Offset, valid).CopyTo(to.Samples.AsSpan(r * rowSize));
                }
            }
            to.Lengths64[r] = valid;
            if (_lengths is not null && _lengthsType == TensorElementType.Int32) to.Lengths32[r] = valid;
            if (_mask is null) continue;
            var row = r * length;
            if (_maskType == TensorElementType.Float)
                for (var t = 0; t < length; t++) to.MaskFloats[row + t] = t < valid ? 1f : 0f;
            else
                for (var t = 0; t < length; t++) to.MaskBools[row + t] = t < valid;
        }
        if (_inputType == TensorElementType.Float16)
            for (var i = 0; i < total; i++) to.Samples16[i] = (Float16)to.Samples[i];
    }

    /// <summary>The run, with ORT's errors translated where they are read (Workers.Onnx's
    /// <see cref="Workers.Onnx.OrtErrors"/>): out of memory arrives as <see cref="Workers.Onnx.OnnxOutOfMemoryException"/>.</summary>
    private IDisposableReadOnlyCollection<OrtValue> RunBinding(OrtIoBinding binding, RunOptions run)
    {
        try
        {
            _session.RunWithBinding(run, binding);
            return binding.GetOutputValues();
        }
        catch (OnnxRuntimeException e)
        {
            throw Workers.Onnx.OrtErrors.Translate(e, $"stage '{_o.Name}': running model '{_o.Model}'");
        }
    }

    private static NodeMetadata Meta(IReadOnlyDictionary<string, NodeMetadata> all, string name, string key) =>
        all.TryGetValue(name, out var m) ? m
        : throw new StageConfigurationException($"{key} '{name}' is not a name the model has; it has {string.Join(", ", all.Keys.Select(k => $"'{k}'"))}");

    private StageConfigurationException Config(string what) =>
        new($"stage '{_o.Name}', model '{_o.Model}': {what}");

    public void Dispose()
    {
        DisposeBuckets();
        _binding.Dispose();
        _run.Dispose();
        _session.Dispose();
    }

    /// <summary>Input buffers for one batch shape: audio or features, lengths, mask, float16 copy.</summary>
    private sealed class StageInputs
    {
        public float[] Samples = [];
        public Float16[] Samples16 = [];
        public long[] Lengths64 = [];
        public int[] Lengths32 = [];
        public float[] MaskFloats = [];
        public bool[] MaskBools = [];

        /// <summary>Makes every buffer the stage uses hold <paramref name="rows"/> rows of <paramref name="rowSize"/>
        /// values (grown, doubling, only when too small: the dynamic path's buffers serve every batch).</summary>
        public void Grow(int rows, int rowSize, ModelStage stage)
        {
            var total = rows * rowSize;
            GrowArray(ref Samples, total);
            if (stage._inputType == TensorElementType.Float16) GrowArray(ref Samples16, total);
            GrowArray(ref Lengths64, rows);
            if (stage._lengths is not null && stage._lengthsType == TensorElementType.Int32) GrowArray(ref Lengths32, rows);
            var length = rowSize / (stage._fbank is null ? 1 : stage._featureWidth);
            if (stage._mask is not null && stage._maskType == TensorElementType.Float) GrowArray(ref MaskFloats, rows * length);
            if (stage._mask is not null && stage._maskType == TensorElementType.Bool) GrowArray(ref MaskBools, rows * length);
        }

        private static void GrowArray<T>(ref T[] buffer, int size)
        {
            if (buffer.Length < size) buffer = new T[Math.Max(size, buffer.Length * 2)];
        }
    }
}
