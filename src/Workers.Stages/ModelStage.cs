using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Workers.Stages;

/// <summary>A segment's audio handed to a stage: 16 kHz mono float samples.</summary>
public readonly record struct StageSegment(int Id, ReadOnlyMemory<float> Samples);

/// <summary>One stage's result for one segment: per kept output (in <see cref="ModelStage.Outputs"/> order), the row's values.</summary>
public sealed record StageResult(int Segment, float[][] Values);

/// <summary>
/// A model stage: one ONNX Runtime session (the official managed API) over speech segments,
/// batched by seconds (<see cref="StageBatchPlanner"/>). Each batch is padded to its longest row
/// (or to the model's fixed shape) with zeros, and told the valid part through a lengths or mask
/// input when the model has one. Element types are read from the model: a float16 model gets
/// float16 input and its float16 outputs are widened. Inputs are written into buffers owned by
/// the stage (grown only when a batch needs more, never per run) and bound with
/// <see cref="OrtIoBinding"/>; outputs come from ORT's own arena. Out of memory halves the batch
/// and retries (<see cref="MaxRows"/> stays lowered); a batch of one out of memory throws.
/// Not thread-safe: one stage per worker thread.
/// </summary>
public sealed class ModelStage : IDisposable
{
    private readonly InferenceSession _session;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _run = new();
    private readonly ModelStageOptions _o;
    private readonly KaldiFbank? _fbank;
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
    private float[] _buffer = [];
    private Float16[] _buffer16 = [];
    private float[] _maskBuffer = [];
    private bool[] _maskBools = [];
    private long[] _lengths64 = [];
    private int[] _lengths32 = [];

    /// <param name="modelPath">The verified model file.</param>
    /// <param name="sessionOptions">Execution provider and threads; the stage does not own it.</param>
    public ModelStage(string modelPath, ModelStageOptions options, SessionOptions? sessionOptions = null)
    {
        var problems = options.Validate($"stage '{options.Name}'");
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems));
        _o = options;
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
            foreach (var out_ in outputs)
            {
                var m = Meta(_session.OutputMetadata, out_.Name, "Outputs:Name");
                if (m.Dimensions.Length is not (1 or 2)) throw Config($"output '{out_.Name}' has rank {m.Dimensions.Length}; a stage keeps [B] or [B, D] outputs (one row per segment)");
                if (m.ElementDataType is not (TensorElementType.Float or TensorElementType.Float16)) throw Config($"output '{out_.Name}' is {m.ElementDataType}; a stage keeps float or float16 outputs");
            }
            Outputs = outputs;

            var sr = ModelStageOptions.SampleRate;
            _maxPiece = (int)Math.Round(options.MaxSegmentSeconds * sr);
            if (!options.IsFbank && _fixedLength > 0) _maxPiece = Math.Min(_maxPiece, _fixedLength);
            _overlap = (int)Math.Round(options.CutOverlapSeconds * sr);
            MaxRows = _fixedRows > 0 ? _fixedRows : options.MaxBatchSize;
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

    private int RowCap => Math.Min(MaxRows, _fixedRows > 0 ? _fixedRows : int.MaxValue);

    /// <summary>Runs the model once on one second of zeros (or its fixed shape), so the first shard does not pay for it.</summary>
    public void WarmUp()
    {
        var zeros = new float[Math.Min(ModelStageOptions.SampleRate, _maxPiece)];
        _ = Run([new StageSegment(0, zeros)]);
    }

    /// <summary>The stage's results, one per segment, in the order of <paramref name="segments"/>.</summary>
    public IReadOnlyList<StageResult> Run(IReadOnlyList<StageSegment> segments)
    {
        var lengths = segments.Select(s => s.Samples.Length).ToList();
        var pieces = StageBatchPlanner.Pieces(lengths, _maxPiece, _o.CutsLongSegments || _fixedLength > 0 && !_o.IsFbank, _overlap);
        var batchSamples = (long)Math.Round(_o.BatchSeconds * ModelStageOptions.SampleRate);
        // Sums of the pieces' rows weighted by their lengths, per segment and output; divided at the end.
        var sums = new double[segments.Count][][];
        var weights = new double[segments.Count];
        foreach (var batch in StageBatchPlanner.Batches(pieces, batchSamples, RowCap))
            RunWithHalving(batch, segments, sums, weights);
        var results = new StageResult[segments.Count];
        for (var i = 0; i < segments.Count; i++)
        {
            var values = new float[Outputs.Count][];
            for (var o = 0; o < Outputs.Count; o++)
            {
                var s = sums[i]?[o] ?? [];
                values[o] = new float[s.Length];
                for (var d = 0; d < s.Length; d++) values[o][d] = (float)(s[d] / weights[i]);
            }
            results[i] = new StageResult(segments[i].Id, values);
        }
        return results;
    }

    private void RunWithHalving(StagePiece[] batch, IReadOnlyList<StageSegment> segments, double[][][] sums, double[] weights)
    {
        if (batch.Length > RowCap)
        {
            foreach (var part in batch.Chunk(RowCap)) RunWithHalving(part, segments, sums, weights);
            return;
        }
        try
        {
            RunBatch(batch, segments, sums, weights);
        }
        catch (Exception e) when (batch.Length > 1 && e is Workers.Onnx.OnnxOutOfMemoryException or OutOfMemoryException)
        {
            // Inference wrote nothing for this batch: run it again as two halves, and keep the lower size for the rest.
            OomRetries++;
            MaxRows = Math.Max(1, batch.Length / 2);
            var half = (batch.Length + 1) / 2;
            RunWithHalving(batch[..half], segments, sums, weights);
            RunWithHalving(batch[half..], segments, sums, weights);
        }
    }

    private void RunBatch(StagePiece[] batch, IReadOnlyList<StageSegment> segments, double[][][] sums, double[] weights)
    {
        OnBatch?.Invoke(batch);
        var rows = _fixedRows > 0 ? _fixedRows : batch.Length;
        float[][]? features = null;
        int longest;
        if (_fbank is not null)
        {
            features = new float[batch.Length][];
            for (var r = 0; r < batch.Length; r++)
                features[r] = _fbank.Compute(segments[batch[r].Segment].Samples.Span.Slice(batch[r].Offset, batch[r].Length));
            longest = features.Max(f => f.Length / _featureWidth);
        }
        else longest = batch[^1].Length;
        var length = _fixedLength > 0 ? _fixedLength : Math.Max(1, longest);
        var width = _fbank is null ? 1 : _featureWidth;
        var rowSize = length * width;
        var total = rows * rowSize;
        Grow(ref _buffer, total);
        Array.Clear(_buffer, 0, total); // padding is zeros, never a previous batch's samples
        Grow(ref _lengths64, rows);
        for (var r = 0; r < rows; r++)
        {
            var valid = 0;
            if (r < batch.Length)
            {
                if (features is not null)
                {
                    valid = Math.Min(length, features[r].Length / width);
                    features[r].AsSpan(0, valid * width).CopyTo(_buffer.AsSpan(r * rowSize));
                }
                else
                {
                    var p = batch[r];
                    valid = Math.Min(length, p.Length);
                    segments[p.Segment].Samples.Span.Slice(p.Offset, valid).CopyTo(_buffer.AsSpan(r * rowSize));
                }
            }
            _lengths64[r] = valid;
        }
        LargestBatchSamples = Math.Max(LargestBatchSamples, (long)rows * (_fbank is null ? length : batch.Max(p => p.Length)));

        var shape = _fbank is null ? new long[] { rows, length } : [rows, length, width];
        var owned = new List<OrtValue>(3);
        try
        {
            _binding.ClearBoundInputs();
            _binding.ClearBoundOutputs();
            owned.Add(InputValue(total, shape));
            _binding.BindInput(_input, owned[^1]);
            if (_lengths is not null)
            {
                if (_lengthsType == TensorElementType.Int64)
                    owned.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _lengths64.AsMemory(0, rows), [rows]));
                else
                {
                    Grow(ref _lengths32, rows);
                    for (var r = 0; r < rows; r++) _lengths32[r] = (int)_lengths64[r];
                    owned.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _lengths32.AsMemory(0, rows), [rows]));
                }
                _binding.BindInput(_lengths, owned[^1]);
            }
            if (_mask is not null)
            {
                var n = rows * length;
                if (_maskType == TensorElementType.Float)
                {
                    Grow(ref _maskBuffer, n);
                    for (var r = 0; r < rows; r++)
                        for (var t = 0; t < length; t++) _maskBuffer[r * length + t] = t < _lengths64[r] ? 1f : 0f;
                    owned.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _maskBuffer.AsMemory(0, n), [rows, length]));
                }
                else
                {
                    Grow(ref _maskBools, n);
                    for (var r = 0; r < rows; r++)
                        for (var t = 0; t < length; t++) _maskBools[r * length + t] = t < _lengths64[r];
                    owned.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _maskBools.AsMemory(0, n), [rows, length]));
                }
                _binding.BindInput(_mask, owned[^1]);
            }
            foreach (var o in Outputs) _binding.BindOutputToDevice(o.Name, OrtMemoryInfo.DefaultInstance);
            using var values = RunBinding();
            var k = 0;
            foreach (var value in values)
            {
                var info = value.GetTensorTypeAndShape();
                var dims = info.Shape;
                var d = dims.Length == 2 ? (int)dims[1] : 1;
                for (var r = 0; r < batch.Length; r++)
                {
                    var p = batch[r];
                    var acc = sums[p.Segment] ??= new double[Outputs.Count][];
                    var row = acc[k] ??= new double[d];
                    if (info.ElementDataType == TensorElementType.Float16)
                    {
                        var span = value.GetTensorDataAsSpan<Float16>().Slice(r * d, d);
                        for (var j = 0; j < d; j++) row[j] += (float)span[j] * p.Length;
                    }
                    else
                    {
                        var span = value.GetTensorDataAsSpan<float>().Slice(r * d, d);
                        for (var j = 0; j < d; j++) row[j] += span[j] * (double)p.Length;
                    }
                }
                k++;
            }
            foreach (var p in batch) weights[p.Segment] += p.Length;
            BatchesRun++;
        }
        finally
        {
            foreach (var v in owned) v.Dispose();
        }
    }

    /// <summary>The run, with ORT's errors translated where they are read (Workers.Onnx's
    /// <see cref="Workers.Onnx.OrtErrors"/>): out of memory arrives as <see cref="Workers.Onnx.OnnxOutOfMemoryException"/>.</summary>
    private IDisposableReadOnlyCollection<OrtValue> RunBinding()
    {
        try
        {
            _session.RunWithBinding(_run, _binding);
            return _binding.GetOutputValues();
        }
        catch (OnnxRuntimeException e)
        {
            throw Workers.Onnx.OrtErrors.Translate(e, $"stage '{_o.Name}': running model '{_o.Model}'");
        }
    }

    private OrtValue InputValue(int total, long[] shape)
    {
        if (_inputType == TensorElementType.Float)
            return OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _buffer.AsMemory(0, total), shape);
        Grow(ref _buffer16, total);
        for (var i = 0; i < total; i++) _buffer16[i] = (Float16)_buffer[i];
        return OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _buffer16.AsMemory(0, total), shape);
    }

    private static void Grow<T>(ref T[] buffer, int size)
    {
        if (buffer.Length < size) buffer = new T[Math.Max(size, buffer.Length * 2)];
    }

    private static NodeMetadata Meta(IReadOnlyDictionary<string, NodeMetadata> all, string name, string key) =>
        all.TryGetValue(name, out var m) ? m
        : throw new StageConfigurationException($"{key} '{name}' is not a name the model has; it has {string.Join(", ", all.Keys.Select(k => $"'{k}'"))}");

    private StageConfigurationException Config(string what) =>
        new($"stage '{_o.Name}', model '{_o.Model}': {what}");

    public void Dispose()
    {
        _binding.Dispose();
        _run.Dispose();
        _session.Dispose();
    }
}

/// <summary>A stage cannot run as configured (model and configuration disagree); raised at start-up, before claiming.</summary>
public sealed class StageConfigurationException(string message, Exception? inner = null) : Exception(message, inner);
