namespace Workers.Onnx.Tests.Logging;

public sealed class OrtLogBufferTests
{
    [Fact]
    public void Since_ReturnsOnlyLinesLoggedAfterTheMark()
    {
        var log = new OrtLogBuffer(8);
        log.Add(OrtLogSeverity.Warning, "onnxruntime", "a", "x.cc:1", "before");
        var mark = log.Mark();
        log.Add(OrtLogSeverity.Error, "onnxruntime", "a", "x.cc:2", "during 1");
        log.Add(OrtLogSeverity.Error, "onnxruntime", "a", "x.cc:3", "during 2");

        Assert.Equal(["during 1", "during 2"], log.Since(mark).Select(e => e.Message));
        Assert.Equal("[E:onnxruntime:a, x.cc:2] during 1", log.Since(mark)[0].ToString());
    }

    [Fact]
    public void WhenFull_KeepsTheMostRecentLines()
    {
        var log = new OrtLogBuffer(3);
        for (var i = 0; i < 10; i++) log.Add(OrtLogSeverity.Warning, "c", "id", "loc", $"line {i}");

        Assert.Equal(["line 7", "line 8", "line 9"], log.Snapshot().Select(e => e.Message));
        Assert.Equal([7L, 8L, 9L], log.Snapshot().Select(e => e.Sequence));
        Assert.Equal(["line 9"], log.Since(9).Select(e => e.Message));
    }
}
