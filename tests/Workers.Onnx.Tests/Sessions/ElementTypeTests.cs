namespace Workers.Onnx.Tests.Sessions;

/// <summary>Issue 16: element types come from the model, so a float16 export binds float16 tensors and runs.</summary>
[Collection(OnnxCollection.Name)]
public sealed class ElementTypeTests(OnnxFixture fixture)
{
    [Theory]
    [InlineData(TensorElementType.Float16)]
    [InlineData(TensorElementType.Float)]
    public void AModelsOwnElementType_IsReadAndBound_AndRuns(TensorElementType type)
    {
        using var dir = new TempDirectory();
        var path = dir.File("add.onnx");
        File.WriteAllBytes(path, TinyOnnxModel.Binary("Add", type, 4));
        using var session = OnnxSession.Create(fixture.Environment, path, new OnnxSessionOptions { ExecutionProvider = OnnxExecutionProvider.Cpu });

        Assert.Equal(type, session.InputType("x"));
        Assert.Equal(type, session.OutputType("y"));
        Assert.Equal($"x: {TensorElementTypes.Name(type)}[batch, 4]", session.Inputs[0].ToString());

        using var x = OrtTensor.Allocate(session.InputType("x"), 2, 4);
        using var y = OrtTensor.Allocate(session.OutputType("y"), 2, 4);
        using var binding = session.CreateBinding();
        binding.BindInput("x", x);
        binding.BindOutput("y", y);
        if (type == TensorElementType.Float16)
        {
            var input = Assert.IsType<OrtTensor<Half>>(x).Span;
            for (var i = 0; i < input.Length; i++) input[i] = (Half)(i * 0.25f);
            binding.Run();
            Assert.Equal(Enumerable.Range(0, 8).Select(i => i * 0.5f), ((OrtTensor<Half>)y).Span.ToArray().Select(h => (float)h));
        }
        else
        {
            var input = Assert.IsType<OrtTensor<float>>(x).Span;
            for (var i = 0; i < input.Length; i++) input[i] = i * 0.25f;
            binding.Run();
            Assert.Equal(Enumerable.Range(0, 8).Select(i => i * 0.5f), ((OrtTensor<float>)y).Span.ToArray());
        }
    }
}
