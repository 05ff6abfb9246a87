using System.Buffers.Binary;
using System.Diagnostics;

namespace Workers.Cli.Tests;

internal static class TestAudio
{
    /// <summary>A 16-bit mono PCM WAV of a quiet tone.</summary>
    public static void WriteWav(string path, double seconds, int rate = 16000)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var n = (int)(seconds * rate);
        var bytes = new byte[44 + n * 2];
        "RIFF"u8.CopyTo(bytes);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), 36 + n * 2);
        "WAVEfmt "u8.CopyTo(bytes.AsSpan(8));
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(16), 16);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(20), 1);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(22), 1);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(24), rate);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(28), rate * 2);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(32), 2);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(34), 16);
        "data"u8.CopyTo(bytes.AsSpan(36));
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(40), n * 2);
        for (var i = 0; i < n; i++)
            BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(44 + i * 2), (short)(3000 * Math.Sin(2 * Math.PI * 220 * i / rate)));
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>Encodes with the real ffmpeg (installed by ops/setup.sh).</summary>
    public static void Encode(string wav, string output)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        var psi = new ProcessStartInfo("ffmpeg") { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-nostdin", "-v", "error", "-y", "-i", wav, output }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"ffmpeg failed: {err}");
    }
}
