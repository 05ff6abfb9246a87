namespace Workers.Pipeline.Tests.Vad;

/// <summary>
/// A line-by-line port of the part of silero-vad's <c>get_speech_timestamps</c> that follows the
/// model (snakers4/silero-vad, src/silero_vad/utils_vad.py, v6), kept deliberately literal (dicts,
/// dead branches, two passes over the whole audio) so the streaming implementation can be checked
/// against it on random inputs.
/// </summary>
internal static class UpstreamReference
{
    public static List<(long Start, long End)> GetSpeechTimestamps(
        float[] speechProbs,
        long audioLengthSamples,
        double threshold = 0.5,
        int samplingRate = 16000,
        int minSpeechDurationMs = 250,
        double maxSpeechDurationS = double.PositiveInfinity,
        int minSilenceDurationMs = 100,
        int speechPadMs = 30,
        double? negThreshold = null,
        double minSilenceAtMaxSpeech = 98,
        bool useMaxPossSilAtMaxSpeech = true,
        int windowSizeSamples = 512)
    {
        // Python: int * int / 1000 is an exact int product, then one float division.
        double minSpeechSamples = (double)(samplingRate * minSpeechDurationMs) / 1000;
        double speechPadSamples = (double)(samplingRate * speechPadMs) / 1000;
        double maxSpeechSamples = samplingRate * maxSpeechDurationS - windowSizeSamples - 2 * speechPadSamples;
        double minSilenceSamples = (double)(samplingRate * minSilenceDurationMs) / 1000;
        double minSilenceSamplesAtMaxSpeech = samplingRate * minSilenceAtMaxSpeech / 1000;

        bool triggered = false;
        var speeches = new List<Dictionary<string, long>>();
        var currentSpeech = new Dictionary<string, long>();

        double neg = negThreshold ?? Math.Max(threshold - 0.15, 0.01);
        long tempEnd = 0;
        long prevEnd = 0, nextStart = 0;
        var possibleEnds = new List<(long End, long Dur)>();

        for (int i = 0; i < speechProbs.Length; i++)
        {
            double speechProb = speechProbs[i];
            long w = (long)windowSizeSamples * i;
            if (speechProb >= threshold && tempEnd != 0)
            {
                if (tempEnd != 0)
                {
                    long silDur = w - tempEnd;
                    if (silDur > minSilenceSamplesAtMaxSpeech) possibleEnds.Add((tempEnd, silDur));
                    tempEnd = 0;
                }
                if (nextStart < prevEnd) nextStart = w;
            }

            if (speechProb >= threshold && !triggered)
            {
                triggered = true;
                currentSpeech["start"] = w;
                continue;
            }

            if (triggered && w - currentSpeech["start"] > maxSpeechSamples)
            {
                if (possibleEnds.Count > 0)
                {
                    long dur;
                    if (useMaxPossSilAtMaxSpeech)
                    {
                        (prevEnd, dur) = possibleEnds[0]; // Python max(): the first of equal maxima
                        foreach (var pe in possibleEnds)
                            if (pe.Dur > dur) (prevEnd, dur) = pe;
                    }
                    else
                    {
                        (prevEnd, dur) = possibleEnds[^1];
                    }
                    currentSpeech["end"] = prevEnd;
                    speeches.Add(currentSpeech);
                    currentSpeech = new Dictionary<string, long>();
                    nextStart = prevEnd + dur;
                    if (nextStart < prevEnd + w)
                        currentSpeech["start"] = nextStart;
                    else
                        triggered = false;
                    long ns = nextStart;
                    possibleEnds = possibleEnds.Where(p => p.End > ns).ToList();
                    prevEnd = nextStart = tempEnd = 0;
                }
                else
                {
                    currentSpeech["end"] = w;
                    speeches.Add(currentSpeech);
                    currentSpeech = new Dictionary<string, long>();
                    prevEnd = nextStart = tempEnd = 0;
                    triggered = false;
                    possibleEnds = [];
                    continue;
                }
            }

            if (speechProb < neg && triggered)
            {
                if (tempEnd == 0) tempEnd = w;
                if (w - tempEnd < minSilenceSamples)
                {
                    continue;
                }
                else
                {
                    currentSpeech["end"] = tempEnd;
                    if (currentSpeech["end"] - currentSpeech["start"] > minSpeechSamples) speeches.Add(currentSpeech);
                    currentSpeech = new Dictionary<string, long>();
                    prevEnd = nextStart = tempEnd = 0;
                    triggered = false;
                    possibleEnds = [];
                    continue;
                }
            }
        }

        if (currentSpeech.Count > 0 && audioLengthSamples - currentSpeech["start"] > minSpeechSamples)
        {
            currentSpeech["end"] = audioLengthSamples;
            speeches.Add(currentSpeech);
        }

        for (int i = 0; i < speeches.Count; i++)
        {
            var speech = speeches[i];
            if (i == 0) speech["start"] = (long)Math.Max(0, speech["start"] - speechPadSamples);
            if (i != speeches.Count - 1)
            {
                long silenceDuration = speeches[i + 1]["start"] - speech["end"];
                if (silenceDuration < 2 * speechPadSamples)
                {
                    speech["end"] += FloorDiv(silenceDuration, 2);
                    speeches[i + 1]["start"] = Math.Max(0, speeches[i + 1]["start"] - FloorDiv(silenceDuration, 2));
                }
                else
                {
                    speech["end"] = (long)Math.Min(audioLengthSamples, speech["end"] + speechPadSamples);
                    speeches[i + 1]["start"] = (long)Math.Max(0, speeches[i + 1]["start"] - speechPadSamples);
                }
            }
            else
            {
                speech["end"] = (long)Math.Min(audioLengthSamples, speech["end"] + speechPadSamples);
            }
        }

        return speeches.Select(s => (s["start"], s["end"])).ToList();
    }

    private static long FloorDiv(long a, long b) => (long)Math.Floor((double)a / b);
}
