namespace Workers.Onnx;

/// <summary>Which execution provider a session should run on.</summary>
public enum OnnxExecutionProvider
{
    /// <summary>CUDA when it can be enabled, otherwise CPU with a loud warning carrying ORT's reason.</summary>
    Auto = 0,

    /// <summary>CUDA or nothing: session creation fails with ORT's reason when CUDA cannot be enabled.</summary>
    Cuda = 1,

    /// <summary>CPU only.</summary>
    Cpu = 2,
}

/// <summary>cuDNN convolution algorithm search (the CUDA provider's <c>cudnn_conv_algo_search</c>).</summary>
public enum CudnnConvAlgoSearch
{
    /// <summary>Benchmark every algorithm for each new input shape (ORT's default; slow first runs).</summary>
    Exhaustive = 0,

    /// <summary>cuDNN's heuristic pick; no benchmarking.</summary>
    Heuristic = 1,

    /// <summary>CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM always.</summary>
    Default = 2,
}

/// <summary>How the CUDA provider's memory arena grows (its <c>arena_extend_strategy</c>).</summary>
public enum ArenaExtendStrategy
{
    /// <summary>Double the arena each time it runs out (ORT's default: fewer, larger allocations).</summary>
    NextPowerOfTwo = 0,

    /// <summary>Grow by exactly what was asked (less memory held; more allocations while shapes change).</summary>
    SameAsRequested = 1,
}

/// <summary>GraphOptimizationLevel.</summary>
public enum OnnxGraphOptimizationLevel
{
    DisableAll = 0,
    Basic = 1,
    Extended = 2,
    Layout = 3,
    All = 99,
}

/// <summary>ExecutionMode.</summary>
public enum OnnxExecutionMode
{
    Sequential = 0,
    Parallel = 1,
}

/// <summary>ONNXType: what kind of value a model input or output is.</summary>
public enum OnnxValueKind
{
    Unknown = 0,
    Tensor = 1,
    Sequence = 2,
    Map = 3,
    Opaque = 4,
    SparseTensor = 5,
    Optional = 6,
}
