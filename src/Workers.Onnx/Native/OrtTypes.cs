using System.Runtime.InteropServices;

namespace Workers.Onnx.Native;

// Opaque ONNX Runtime objects (ORT_RUNTIME_CLASS in onnxruntime_c_api.h): only ever used behind pointers.
internal struct OrtEnv;
internal struct OrtStatus;
internal struct OrtMemoryInfo;
internal struct OrtSession;
internal struct OrtValue;
internal struct OrtRunOptions;
internal struct OrtTypeInfo;
internal struct OrtTensorTypeAndShapeInfo;
internal struct OrtSessionOptions;
internal struct OrtModelMetadata;
internal struct OrtAllocator;
internal struct OrtCUDAProviderOptionsV2;
internal struct OrtEpAssignedSubgraph;
internal struct OrtEpAssignedNode;

/// <summary>struct OrtApiBase: the one table the library exports (OrtGetApiBase).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct OrtApiBase
{
    public delegate* unmanaged<uint, OrtApi*> GetApi; // const OrtApi* (uint32_t version)
    public delegate* unmanaged<byte*> GetVersionString; // const char* (void)
}

/// <summary>enum OrtLoggingLevel.</summary>
internal enum OrtLoggingLevel
{
    Verbose = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
    Fatal = 4,
}

/// <summary>enum OrtAllocatorType.</summary>
internal enum OrtAllocatorType
{
    Invalid = -1,
    Device = 0,
    Arena = 1,
}

/// <summary>enum OrtMemType.</summary>
internal enum OrtMemType
{
    CpuInput = -2,
    CpuOutput = -1,
    Default = 0,
}
