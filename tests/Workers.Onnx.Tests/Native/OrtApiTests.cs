using Workers.Onnx.Native;

namespace Workers.Onnx.Tests.Native;

[Collection(OnnxCollection.Name)]
public sealed unsafe class OrtApiTests(OnnxFixture fixture)
{
    [Fact]
    public void LoadedLibrary_IsOnnxRuntime_1_30_0_WithApiVersion30()
    {
        Assert.Equal("1.30.0", fixture.Environment.Version);
        Assert.Equal(30u, OrtLibrary.ApiVersion);
        Assert.Equal(fixture.Catalog.Get(ModelCatalog.OnnxRuntime).PathUnder(fixture.ModelsRoot), fixture.Environment.LibraryPath);
        Assert.Contains(OnnxSession.CpuProvider, fixture.Environment.AvailableProviders);
    }

    [Fact]
    public void FunctionTable_LinesUpWithTheBinary_AtEntriesSpreadOverIt()
    {
        // The struct's field order is the ABI: if one entry were missing or extra, everything after it
        // would call the wrong function. These entries take no arguments and return pointers, so
        // calling them is safe and tells whether their slots hold what the header says.
        var api = OrtLibrary.Api;
        Assert.StartsWith("ORT Build Info", Utf8.Read(api->GetBuildInfoString()));        // entry 254
        Assert.True(((delegate* unmanaged<void*>)api->GetModelEditorApi)() != null);      // entry 291
        Assert.True(((delegate* unmanaged<void*>)api->GetCompileApi)() != null);          // entry 294
        Assert.True(((delegate* unmanaged<void*>)api->GetEpApi)() != null);               // entry 317
        Assert.True(((delegate* unmanaged<void*>)api->GetInteropApi)() != null);          // entry 395
        Assert.Equal(410 * sizeof(nint), sizeof(OrtApi));
    }

    [Fact]
    public void LoadingASecondLibraryPath_IsRefusedWithTheReason()
    {
        using var dir = new TempDirectory();
        var other = dir.File("libonnxruntime.so.1");
        File.WriteAllText(other, "not loaded");
        var e = Assert.Throws<InvalidOperationException>(() => OrtEnvironment.Load(other));
        Assert.Contains("already loaded from", e.Message);
        Assert.Same(fixture.Environment, OrtEnvironment.Load(fixture.Environment.LibraryPath));
    }
}
