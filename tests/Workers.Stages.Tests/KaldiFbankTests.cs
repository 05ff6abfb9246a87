using Workers.Stages;

namespace Workers.Stages.Tests;

/// <summary>
/// The filterbank against a plain transcription of Kaldi's algorithm (feature-window.cc,
/// mel-computations.cc; torchaudio.compliance.kaldi.fbank) written here with a direct O(N²) DFT,
/// and against facts that do not depend on any implementation.
/// </summary>
public sealed class KaldiFbankTests
{
    [Fact]
    public void Frame_count_follows_snip_edges()
    {
        var f = new KaldiFbank(new FbankOptions());
        Assert.Equal(0, f.FrameCount(399));
        Assert.Equal(1, f.FrameCount(400));
        Assert.Equal(98, f.FrameCount(16000)); // 1 + (16000 - 400) / 160
        Assert.Equal(98 * 80, f.Compute(new float[16000]).Length);
    }

    [Fact]
    public void Matches_a_direct_transcription_of_kaldi()
    {
        var rng = new Random(1);
        var x = new float[4000];
        for (var i = 0; i < x.Length; i++) x[i] = (float)(Math.Sin(i * 0.05) * 0.3 + (rng.NextDouble() - 0.5) * 0.1);
        var o = new FbankOptions { NumMelBins = 40 };

        var fast = new KaldiFbank(o).Compute(x);
        var slow = Reference(x, o);

        Assert.Equal(slow.Length, fast.Length);
        for (var i = 0; i < slow.Length; i++) Assert.True(Math.Abs(slow[i] - fast[i]) < 1e-3, $"{i}: {slow[i]} vs {fast[i]}");
    }

    [Fact]
    public void A_tone_peaks_in_the_mel_bin_around_its_frequency()
    {
        var x = new float[16000];
        for (var i = 0; i < x.Length; i++) x[i] = (float)(0.5 * Math.Sin(2 * Math.PI * 1000 * i / 16000.0));
        var o = new FbankOptions();
        var f = new KaldiFbank(o).Compute(x);
        var frame = f.AsSpan(50 * 80, 80).ToArray();
        var peak = Array.IndexOf(frame, frame.Max());
        // Bin centres are equally spaced in mel between 20 Hz and 8 kHz: find the one nearest 1 kHz.
        var low = KaldiFbank.Mel(20); var delta = (KaldiFbank.Mel(8000) - low) / 81;
        var nearest = Enumerable.Range(0, 80).MinBy(m => Math.Abs(low + (m + 1) * delta - KaldiFbank.Mel(1000)));
        Assert.InRange(peak, nearest - 1, nearest + 1);
    }

    [Fact]
    public void Low_frame_rate_stacks_frames_like_funasr()
    {
        // 10 frames of 1 bin with values 0..9, m = 7, n = 6 (Paraformer's setting).
        var fbank = Enumerable.Range(0, 10).Select(i => (float)i).ToArray();
        var lfr = KaldiFbank.Lfr(fbank, frames: 10, bins: 1, m: 7, n: 6);
        // ceil(10 / 6) = 2 rows; 3 copies of frame 0 in front; the last row padded with frame 9.
        Assert.Equal(new float[] { 0, 0, 0, 0, 1, 2, 3, /**/ 3, 4, 5, 6, 7, 8, 9 }, lfr);
    }

    private static float[] Reference(float[] x, FbankOptions o)
    {
        const int len = 400, shift = 160, nfft = 512;
        var frames = 1 + (x.Length - len) / shift;
        var result = new float[frames * o.NumMelBins];
        double Mel(double f) => 1127 * Math.Log(1 + f / 700);
        for (var t = 0; t < frames; t++)
        {
            var w = new double[len];
            for (var i = 0; i < len; i++) w[i] = x[t * shift + i] * 32768.0;
            var mean = w.Average();
            for (var i = 0; i < len; i++) w[i] -= mean;
            var pre = new double[len];
            pre[0] = w[0] - 0.97 * w[0];
            for (var i = 1; i < len; i++) pre[i] = w[i] - 0.97 * w[i - 1];
            for (var i = 0; i < len; i++) pre[i] *= Math.Pow(0.5 - 0.5 * Math.Cos(2 * Math.PI * i / (len - 1)), 0.85);
            var power = new double[nfft / 2];
            for (var k = 0; k < nfft / 2; k++)
            {
                double re = 0, im = 0;
                for (var i = 0; i < len; i++)
                {
                    re += pre[i] * Math.Cos(2 * Math.PI * k * i / nfft);
                    im -= pre[i] * Math.Sin(2 * Math.PI * k * i / nfft);
                }
                power[k] = re * re + im * im;
            }
            var lo = Mel(20); var hi = Mel(8000); var d = (hi - lo) / (o.NumMelBins + 1);
            for (var m = 0; m < o.NumMelBins; m++)
            {
                double e = 0;
                for (var k = 0; k < nfft / 2; k++)
                {
                    var mel = Mel(k * 16000.0 / nfft);
                    var left = lo + m * d; var center = left + d; var right = center + d;
                    var weight = Math.Max(0, Math.Min((mel - left) / d, (right - mel) / d));
                    e += weight * power[k];
                }
                result[t * o.NumMelBins + m] = (float)Math.Log(Math.Max(e, 1.1920928955078125e-07));
            }
        }
        return result;
    }
}
