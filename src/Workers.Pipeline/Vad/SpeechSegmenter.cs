using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Workers.Pipeline.Vad;

/// <summary>
/// Turns per-window speech probabilities into speech segments with the rules of silero-vad's
/// <c>get_speech_timestamps</c> (snakers4/silero-vad, <c>src/silero_vad/utils_vad.py</c>, v6 with
/// <c>min_silence_at_max_speech</c> and <c>use_max_poss_sil_at_max_speech</c>), fed in chunks.
/// </summary>
/// <remarks>
/// <para>Upstream runs two passes over the whole audio: the hysteresis loop that yields raw
/// segments, then a padding pass that widens each one by the speech pad, shares the gap between
/// neighbours closer than twice the pad, and clamps to [0, audio length]. Here the first pass runs
/// window by window, and a raw segment is padded and emitted as soon as nothing later can change
/// it: once the earliest start any later segment could still have is at least twice the pad away,
/// and its padded end lies inside audio already seen (at least <c>W * (windows - 1) + 1</c>
/// samples). Otherwise it waits for the next segment or for <see cref="Finish"/>, which supplies
/// the total length the last segment's end is clamped to. The segments emitted, in order, equal
/// upstream's list for the same probabilities, whatever the chunking.</para>
/// <para>Window i covers samples [W*i, W*i + W); the last window may be partial (upstream zero-pads
/// it), so <c>ceil(totalSamples / W)</c> windows must have been appended when finishing.</para>
/// <para>No allocation per window: the only growing buffer is the list of candidate split points
/// inside the current segment, reused across segments.</para>
/// </remarks>
public sealed class SpeechSegmenter
{
    private enum State { Open, Finished }

    private readonly double _threshold;
    private readonly double _negThreshold;
    private readonly double _minSpeechSamples;
    private readonly double _minSilenceSamples;
    private readonly double _speechPadSamples;
    private readonly double _maxSpeechSamples;
    private readonly double _minSilenceAtMaxSpeechSamples;
    private readonly bool _useMaxPossibleSilence;
    private readonly int _window;

    // First pass: upstream's loop variables. _tempEnd == 0 means "none", as upstream's truthiness
    // test does (it is never legitimately 0: it is set while triggered, after the start window).
    private long _windows;
    private bool _triggered;
    private long _currentStart;
    private long _tempEnd;
    private readonly List<(long End, long Silence)> _possibleEnds = [];

    // Second pass: the last committed raw segment, padded start known, end not yet emitted.
    private bool _hasPrevious;
    private bool _hasPending;
    private long _pendingStart;
    private long _previousRawEnd;

    private State _state;

    public SpeechSegmenter(VadOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();
        _threshold = options.Threshold;
        _negThreshold = options.EffectiveNegThreshold;
        _minSpeechSamples = options.MinSpeechSamples;
        _minSilenceSamples = options.MinSilenceSamples;
        _speechPadSamples = options.SpeechPadSamples;
        _maxSpeechSamples = options.MaxSpeechSamples;
        _minSilenceAtMaxSpeechSamples = options.MinSilenceAtMaxSpeechSamples;
        _useMaxPossibleSilence = options.UseMaxPossibleSilenceAtMaxSpeech;
        _window = options.WindowSamples;
    }

    /// <summary>Windows appended so far.</summary>
    public long WindowCount => _windows;

    public bool IsFinished => _state == State.Finished;

    /// <summary>Consumes the next windows' probabilities; adds segments that are final to <paramref name="finished"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Append(ReadOnlySpan<float> probabilities, ICollection<SpeechSegment> finished)
    {
        ArgumentNullException.ThrowIfNull(finished);
        if (_state != State.Open) ThrowFinished();
        foreach (var p in probabilities) Step(p, finished);
        TryEmitPending(finished);
    }

    /// <summary>
    /// Ends the audio at <paramref name="totalSamples"/> (which must need exactly the windows
    /// appended: <c>ceil(totalSamples / W)</c>): closes speech still open at the end, as upstream does,
    /// and emits the remaining segments, the last one's padding clamped to the audio length.
    /// </summary>
    public void Finish(long totalSamples, ICollection<SpeechSegment> finished)
    {
        ArgumentNullException.ThrowIfNull(finished);
        if (_state != State.Open) ThrowFinished();
        if (totalSamples < 0 || (totalSamples + _window - 1) / _window != _windows)
            throw new ArgumentException(
                $"{totalSamples} samples make {(totalSamples + _window - 1) / _window} windows of {_window}, but {_windows} probabilities were appended.",
                nameof(totalSamples));

        // upstream: if current_speech and (audio_length_samples - current_speech['start']) > min_speech_samples:
        //               current_speech['end'] = audio_length_samples
        if (_triggered && totalSamples - _currentStart > _minSpeechSamples)
            Commit(_currentStart, totalSamples, finished);

        // upstream (last segment): speech['end'] = int(min(audio_length_samples, speech['end'] + speech_pad_samples))
        if (_hasPending)
        {
            finished.Add(new SpeechSegment(_pendingStart, (long)Math.Min(totalSamples, _previousRawEnd + _speechPadSamples)));
            _hasPending = false;
        }
        _state = State.Finished;
    }

    /// <summary>Forgets everything, ready for another stream with the same options.</summary>
    public void Reset()
    {
        _windows = 0;
        _triggered = false;
        _currentStart = 0;
        _tempEnd = 0;
        _possibleEnds.Clear();
        _hasPrevious = false;
        _hasPending = false;
        _pendingStart = 0;
        _previousRawEnd = 0;
        _state = State.Open;
    }

    // One iteration of upstream's `for i, speech_prob in enumerate(speech_probs)`, same order of tests.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Step(float probability, ICollection<SpeechSegment> finished)
    {
        double p = probability; // upstream compares Python floats (float64)
        long cur = _window * _windows; // window_size_samples * i
        _windows++;

        if (p >= _threshold && _tempEnd != 0)
        {
            long silence = cur - _tempEnd;
            if (silence > _minSilenceAtMaxSpeechSamples) _possibleEnds.Add((_tempEnd, silence));
            _tempEnd = 0;
            // upstream then does `if next_start < prev_end: next_start = W * i`; in v6 prev_end is
            // only non-zero inside the max-speech branch, which zeroes it again, so that never fires.
        }

        if (p >= _threshold && !_triggered)
        {
            _triggered = true;
            _currentStart = cur;
            return;
        }

        if (_triggered && cur - _currentStart > _maxSpeechSamples)
        {
            if (_possibleEnds.Count > 0)
            {
                // use_max_poss_sil_at_max_speech: max(possible_ends, key=duration) (first of equals),
                // else possible_ends[-1].
                var (prevEnd, silence) = _possibleEnds[^1];
                if (_useMaxPossibleSilence)
                {
                    (prevEnd, silence) = _possibleEnds[0];
                    for (int k = 1; k < _possibleEnds.Count; k++)
                        if (_possibleEnds[k].Silence > silence) (prevEnd, silence) = _possibleEnds[k];
                }
                Commit(_currentStart, prevEnd, finished);
                long nextStart = prevEnd + silence;
                // upstream: `if next_start < prev_end + window_size_samples * i:` keep speaking from
                // next_start, else untrigger (cannot happen: the silence ended at or before window i).
                if (nextStart < prevEnd + cur) _currentStart = nextStart;
                else _triggered = false;
                // possible_ends = [p_end for p_end in possible_ends if p_end[0] > next_start]
                int kept = 0;
                for (int k = 0; k < _possibleEnds.Count; k++)
                    if (_possibleEnds[k].End > nextStart) _possibleEnds[kept++] = _possibleEnds[k];
                _possibleEnds.RemoveRange(kept, _possibleEnds.Count - kept);
                _tempEnd = 0;
                // no `continue` upstream: this window may still start a silence below.
            }
            else
            {
                // Hard split just before the limit; no min-speech check for split-off parts.
                Commit(_currentStart, cur, finished);
                _tempEnd = 0;
                _triggered = false;
                _possibleEnds.Clear();
                return;
            }
        }

        if (p < _negThreshold && _triggered)
        {
            if (_tempEnd == 0) _tempEnd = cur;
            if (cur - _tempEnd < _minSilenceSamples) return;
            if (_tempEnd - _currentStart > _minSpeechSamples) Commit(_currentStart, _tempEnd, finished);
            _tempEnd = 0;
            _triggered = false;
            _possibleEnds.Clear();
        }
    }

    // A raw segment joins upstream's `speeches`. The padding pass (upstream, for each i):
    //   if i == 0: speech['start'] = int(max(0, speech['start'] - speech_pad_samples))
    //   if i != len(speeches) - 1:
    //       silence_duration = speeches[i+1]['start'] - speech['end']
    //       if silence_duration < 2 * speech_pad_samples:
    //           speech['end'] += int(silence_duration // 2)
    //           speeches[i+1]['start'] = int(max(0, speeches[i+1]['start'] - silence_duration // 2))
    //       else:
    //           speech['end'] = int(min(audio_length_samples, speech['end'] + speech_pad_samples))
    //           speeches[i+1]['start'] = int(max(0, speeches[i+1]['start'] - speech_pad_samples))
    // Both only look at raw neighbours, so segment i is final once segment i+1's raw start is known.
    private void Commit(long start, long end, ICollection<SpeechSegment> finished)
    {
        long paddedStart;
        if (!_hasPrevious)
        {
            paddedStart = (long)Math.Max(0, start - _speechPadSamples);
        }
        else
        {
            long gap = start - _previousRawEnd;
            if (gap < 2 * _speechPadSamples)
            {
                Debug.Assert(_hasPending, "emitted early although a later segment could still share its gap");
                long half = FloorHalf(gap);
                if (_hasPending) finished.Add(new SpeechSegment(_pendingStart, _previousRawEnd + half));
                paddedStart = Math.Max(0, start - half);
            }
            else
            {
                // `start` lies inside the audio, so the audio is longer than end + pad: min() is a no-op.
                // (A pending segment already emitted by TryEmitPending always lands here.)
                if (_hasPending) finished.Add(new SpeechSegment(_pendingStart, (long)(_previousRawEnd + _speechPadSamples)));
                paddedStart = (long)Math.Max(0, start - _speechPadSamples);
            }
        }
        Debug.Assert(end >= start);
        _hasPrevious = true;
        _hasPending = true;
        _pendingStart = paddedStart;
        _previousRawEnd = end;
    }

    // Emits the pending segment early when no later segment and no audio length can change it.
    private void TryEmitPending(ICollection<SpeechSegment> finished)
    {
        if (!_hasPending) return;
        // Any later raw segment starts at or after the open segment's start, or the next window.
        long earliestNextStart = _triggered ? _currentStart : _window * _windows;
        if (earliestNextStart - _previousRawEnd < 2 * _speechPadSamples) return;
        double paddedEnd = _previousRawEnd + _speechPadSamples;
        long audioSeen = _windows == 0 ? 0 : _window * (_windows - 1) + 1;
        if (paddedEnd > audioSeen) return; // the total length may still clamp it: wait for Finish
        finished.Add(new SpeechSegment(_pendingStart, (long)paddedEnd));
        _hasPending = false;
    }

    private static long FloorHalf(long x) => x >= 0 ? x / 2 : -((-x + 1) / 2); // Python's x // 2

    private static void ThrowFinished() =>
        throw new InvalidOperationException("The segmenter is finished; call Reset() before reusing it.");
}
