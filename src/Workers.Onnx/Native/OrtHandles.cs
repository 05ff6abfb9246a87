using System.Runtime.InteropServices;

namespace Workers.Onnx.Native;

/// <summary>A native ONNX Runtime object, released through the API table's matching Release function.</summary>
internal abstract class OrtHandle : SafeHandle
{
    protected OrtHandle()
        : base(IntPtr.Zero, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == IntPtr.Zero;
}

internal sealed unsafe class OrtEnvHandle : OrtHandle
{
    public OrtEnv* Ptr => (OrtEnv*)handle;

    public static OrtEnvHandle Own(OrtEnv* p)
    {
        var h = new OrtEnvHandle();
        h.SetHandle((nint)p);
        return h;
    }

    protected override bool ReleaseHandle()
    {
        OrtLibrary.Api->ReleaseEnv((OrtEnv*)handle);
        return true;
    }
}

internal sealed unsafe class OrtSessionOptionsHandle : OrtHandle
{
    public OrtSessionOptions* Ptr => (OrtSessionOptions*)handle;

    public static OrtSessionOptionsHandle Create()
    {
        OrtSessionOptions* p;
        NativeApiStatus.Check(OrtLibrary.Api->CreateSessionOptions(&p), "Creating session options");
        var h = new OrtSessionOptionsHandle();
        h.SetHandle((nint)p);
        return h;
    }

    protected override bool ReleaseHandle()
    {
        OrtLibrary.Api->ReleaseSessionOptions((OrtSessionOptions*)handle);
        return true;
    }
}

internal sealed unsafe class OrtSessionHandle : OrtHandle
{
    public OrtSession* Ptr => (OrtSession*)handle;

    public static OrtSessionHandle Own(OrtSession* p)
    {
        var h = new OrtSessionHandle();
        h.SetHandle((nint)p);
        return h;
    }

    protected override bool ReleaseHandle()
    {
        OrtLibrary.Api->ReleaseSession((OrtSession*)handle);
        return true;
    }
}

internal sealed unsafe class OrtMemoryInfoHandle : OrtHandle
{
    public static OrtMemoryInfoHandle Own(OrtMemoryInfo* p)
    {
        var h = new OrtMemoryInfoHandle();
        h.SetHandle((nint)p);
        return h;
    }

    protected override bool ReleaseHandle()
    {
        OrtLibrary.Api->ReleaseMemoryInfo((OrtMemoryInfo*)handle);
        return true;
    }
}

internal sealed unsafe class OrtTypeInfoHandle : OrtHandle
{
    public OrtTypeInfo* Ptr => (OrtTypeInfo*)handle;

    public static OrtTypeInfoHandle Own(OrtTypeInfo* p)
    {
        var h = new OrtTypeInfoHandle();
        h.SetHandle((nint)p);
        return h;
    }

    protected override bool ReleaseHandle()
    {
        OrtLibrary.Api->ReleaseTypeInfo((OrtTypeInfo*)handle);
        return true;
    }
}

internal sealed unsafe class OrtModelMetadataHandle : OrtHandle
{
    public OrtModelMetadata* Ptr => (OrtModelMetadata*)handle;

    public static OrtModelMetadataHandle Own(OrtModelMetadata* p)
    {
        var h = new OrtModelMetadataHandle();
        h.SetHandle((nint)p);
        return h;
    }

    protected override bool ReleaseHandle()
    {
        OrtLibrary.Api->ReleaseModelMetadata((OrtModelMetadata*)handle);
        return true;
    }
}

internal sealed unsafe class OrtCudaProviderOptionsHandle : OrtHandle
{
    public OrtCUDAProviderOptionsV2* Ptr => (OrtCUDAProviderOptionsV2*)handle;

    public static OrtCudaProviderOptionsHandle Own(OrtCUDAProviderOptionsV2* p)
    {
        var h = new OrtCudaProviderOptionsHandle();
        h.SetHandle((nint)p);
        return h;
    }

    protected override bool ReleaseHandle()
    {
        OrtLibrary.Api->ReleaseCUDAProviderOptions((OrtCUDAProviderOptionsV2*)handle);
        return true;
    }
}

/// <summary>A tensor OrtValue over a buffer we allocated: the value is released first, then the
/// buffer it points into is freed, in that order and only once nothing still references either.</summary>
internal sealed unsafe class OrtTensorValueHandle : OrtHandle
{
    private void* buffer;

    public OrtValue* Ptr => (OrtValue*)handle;

    public static OrtTensorValueHandle Own(OrtValue* value, void* buffer)
    {
        var h = new OrtTensorValueHandle { buffer = buffer };
        h.SetHandle((nint)value);
        return h;
    }

    protected override bool ReleaseHandle()
    {
        OrtLibrary.Api->ReleaseValue((OrtValue*)handle);
        NativeMemory.AlignedFree(buffer);
        buffer = null;
        return true;
    }
}

/// <summary>Memory from <see cref="NativeMemory.AlignedAlloc"/>.</summary>
internal sealed unsafe class NativeMemoryHandle : SafeHandle
{
    private NativeMemoryHandle()
        : base(IntPtr.Zero, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    public void* Ptr => (void*)handle;

    public static NativeMemoryHandle Allocate(nuint bytes)
    {
        var h = new NativeMemoryHandle();
        var p = NativeMemory.AlignedAlloc(bytes == 0 ? 1 : bytes, 64);
        NativeMemory.Clear(p, bytes);
        h.SetHandle((nint)p);
        return h;
    }

    protected override bool ReleaseHandle()
    {
        NativeMemory.AlignedFree((void*)handle);
        return true;
    }
}
