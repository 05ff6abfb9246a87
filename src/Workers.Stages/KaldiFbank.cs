namespace Workers.Stages;

/// <summary>
/// Kaldi-compatible log-mel filterbank, as <c>compute-fbank-feats</c> and torchaudio's
/// <c>compliance.kaldi.fbank</c> compute it (snip_edges, power spectrum, no energy column, no VTLN):
/// frames of <c>FrameLengthMs</c> every <c>FrameShiftMs</c>; per frame optional dither, DC
/// offset removal, pre-emphasis (the first sample against itself), the window, zero padding to
/// the next power of two, |FFT|², triangular mel bins on Kaldi's mel scale (1127 ln(1 + f/700))
/// between <c>LowFreq</c> and <c>HighFreq</c> over the bins below Nyquist, and the log floored at
/// float epsilon. With <c>LfrM</c>/<c>LfrN</c> above 1, frames are then stacked as FunASR's
/// <c>apply_lfr</c> does. Samples are scaled by <c>InputScale</c> first (Kaldi reads int16 values).
/// </summary>
public sealed class KaldiFbank
{
    private readonly FbankOptions _o;
    private readonly int _frameLength;
    private readonly int _frameShift;
    private readonly int _fftSize;
    private readonly double[] _window;
    private readonly float[][] _banks;   // per mel bin: weights over fft bins [0, fftSize/2)
    private readonly int[] _bankStart;
    private readonly double[] _cos, _sin;
    private readonly Random? _dither;

    public KaldiFbank(FbankOptions options, int sampleRate = ModelStageOptions.SampleRate)
    {
        _o = options;
        _frameLength = (int)(sampleRate * options.FrameLengthMs / 1000);
        _frameShift = (int)(sampleRate * options.FrameShiftMs / 1000);
        _fftSize = 1;
        while (_fftSize < _frameLength) _fftSize <<= 1;
        _window = new double[_frameLength];
        var a = 2 * Math.PI / (_frameLength - 1);
        for (var i = 0; i < _frameLength; i++)
            _window[i] = options.WindowType switch
            {
                "hanning" => 0.5 - 0.5 * Math.Cos(a * i),
                "hamming" => 0.54 - 0.46 * Math.Cos(a * i),
                "povey" => Math.Pow(0.5 - 0.5 * Math.Cos(a * i), 0.85),
                _ => 1.0,
            };

        var bins = _fftSize / 2;
        var nyquist = sampleRate / 2.0;
        var high = options.HighFreq <= 0 ? nyquist + options.HighFreq : options.HighFreq;
        var melLow = Mel(options.LowFreq);
        var melHigh = Mel(high);
        var delta = (melHigh - melLow) / (options.NumMelBins + 1);
        var binWidth = (double)sampleRate / _fftSize;
        _banks = new float[options.NumMelBins][];
        _bankStart = new int[options.NumMelBins];
        for (var m = 0; m < options.NumMelBins; m++)
        {
            var left = melLow + m * delta;
            var center = left + delta;
            var right = center + delta;
            var weights = new float[bins];
            int first = -1, last = -1;
            for (var i = 0; i < bins; i++)
            {
                var mel = Mel(binWidth * i);
                var w = Math.Max(0, Math.Min((mel - left) / (center - left), (right - mel) / (right - center)));
                weights[i] = (float)w;
                if (w > 0) { if (first < 0) first = i; last = i; }
            }
            _bankStart[m] = Math.Max(0, first);
            _banks[m] = first < 0 ? [] : weights[first..(last + 1)];
        }
        _cos = new double[_fftSize / 2];
        _sin = new double[_fftSize / 2];
        for (var i = 0; i < _fftSize / 2; i++)
        {
            _cos[i] = Math.Cos(-2 * Math.PI * i / _fftSize);
            _sin[i] = Math.Sin(-2 * Math.PI * i / _fftSize);
        }
        if (options.Dither > 0) _dither = new Random(0);
    }

    /// <summary>Features per output frame: NumMelBins x LfrM.</summary>
    public int Width => _o.NumMelBins * _o.LfrM;

    /// <summary>Frames (before LFR) for <paramref name="samples"/> samples: Kaldi's snip_edges count.</summary>
    public int FrameCount(int samples) => samples < _frameLength ? 0 : 1 + (samples - _frameLength) / _frameShift;

    /// <summary>Rows <see cref="Compute"/> gives for <paramref name="samples"/> samples: frames, then one row every LfrN of them.</summary>
    public int OutputFrames(int samples)
    {
        var frames = FrameCount(samples);
        return frames == 0 ? 0 : (frames + _o.LfrN - 1) / _o.LfrN;
    }

    /// <summary>Kaldi floors mel energies at float32 machine epsilon before the log.</summary>
    public const double FloatEpsilon = 1.1920928955078125e-07;

    public static double Mel(double hz) => 1127.0 * Math.Log(1.0 + hz / 700.0);

    /// <summary>Row-major [frames, <see cref="Width"/>] features of <paramref name="samples"/> (16 kHz, [-1, 1]).</summary>
    public float[] Compute(ReadOnlySpan<float> samples)
    {
        var frames = FrameCount(samples.Length);
        var bins = _o.NumMelBins;
        var fbank = new float[frames * bins];
        var re = new double[_fftSize];
        var im = new double[_fftSize];
        var frame = new double[_frameLength];
        var power = new double[_fftSize / 2];
        for (var f = 0; f < frames; f++)
        {
            var start = f * _frameShift;
            for (var i = 0; i < _frameLength; i++) frame[i] = samples[start + i] * _o.InputScale;
            if (_dither is not null)
                for (var i = 0; i < _frameLength; i++) frame[i] += _o.Dither * Gaussian(_dither);
            if (_o.RemoveDcOffset)
            {
                double mean = 0;
                for (var i = 0; i < _frameLength; i++) mean += frame[i];
                mean /= _frameLength;
                for (var i = 0; i < _frameLength; i++) frame[i] -= mean;
            }
            if (_o.PreemphasisCoefficient != 0)
            {
                for (var i = _frameLength - 1; i > 0; i--) frame[i] -= _o.PreemphasisCoefficient * frame[i - 1];
                frame[0] -= _o.PreemphasisCoefficient * frame[0];
            }
            Array.Clear(re);
            Array.Clear(im);
            for (var i = 0; i < _frameLength; i++) re[i] = frame[i] * _window[i];
            Fft(re, im);
            for (var i = 0; i < power.Length; i++) power[i] = re[i] * re[i] + im[i] * im[i];
            for (var m = 0; m < bins; m++)
            {
                var w = _banks[m];
                var s0 = _bankStart[m];
                double e = 0;
                for (var j = 0; j < w.Length; j++) e += w[j] * power[s0 + j];
                fbank[f * bins + m] = (float)Math.Log(Math.Max(e, FloatEpsilon));
            }
        }
        return _o.LfrM == 1 && _o.LfrN == 1 ? fbank : Lfr(fbank, frames, bins, _o.LfrM, _o.LfrN);
    }

    /// <summary>FunASR's <c>apply_lfr</c>: (m-1)/2 copies of the first frame in front, then m frames every n, the last padded with the last frame.</summary>
    public static float[] Lfr(float[] fbank, int frames, int bins, int m, int n)
    {
        if (frames == 0) return [];
        var outFrames = (frames + n - 1) / n;
        var leftPad = (m - 1) / 2;
        var total = frames + leftPad;
        var result = new float[outFrames * m * bins];
        for (var i = 0; i < outFrames; i++)
            for (var j = 0; j < m; j++)
            {
                var padded = i * n + j;                      // index in the left-padded sequence
                var source = Math.Min(padded, total - 1) - leftPad; // past the end: the last frame
                source = Math.Max(0, source);                // inside the left padding: the first frame
                Array.Copy(fbank, source * bins, result, (i * m + j) * bins, bins);
            }
        return result;
    }

    private void Fft(double[] re, double[] im)
    {
        var n = re.Length;
        for (int i = 1, j = 0; i < n; i++)
        {
            var bit = n >> 1;
            for (; (j & bit) != 0; bit >>= 1) j ^= bit;
            j ^= bit;
            if (i < j)
            {
                (re[i], re[j]) = (re[j], re[i]);
                (im[i], im[j]) = (im[j], im[i]);
            }
        }
        for (var len = 2; len <= n; len <<= 1)
        {
            var step = n / len;
            for (var i = 0; i < n; i += len)
                for (var k = 0; k < len / 2; k++)
                {
                    var wr = _cos[k * step];
                    var wi = _sin[k * step];
                    var a = i + k;
                    var b = a + len / 2;
                    var xr = re[b] * wr - im[b] * wi;
                    var xi = re[b] * wi + im[b] * wr;
                    re[b] = re[a] - xr;
                    im[b] = im[a] - xi;
                    re[a] += xr;
                    im[a] += xi;
                }
        }
    }

    private static double Gaussian(Random r) =>
        Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
}
