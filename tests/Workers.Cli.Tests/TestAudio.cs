using System.Buffers.Binary;
using System.Diagnostics;

namespace Workers.Cli.Tests;

internal static class TestAudio
{
    /// <summary>A 16-bit mono PCM WAV of a quiet tone.</summary>
    public static void WriteWav(string path, double seconds, int rate = 16000) =>
        Workers.Audio.Pcm16Wav.Write(path, rate, (int)(seconds * rate), i => (short)(3000 * Math.Sin(2 * Math.PI * 220 * i / rate)));

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
