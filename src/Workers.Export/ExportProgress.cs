namespace Workers.Export;

/// <summary>How far an export is: reported every <see cref="CorpusExporter.ProgressEverySegments"/> segments and at the end.</summary>
/// <param name="Segments">Segments written so far.</param>
/// <param name="SpeechSeconds">Their speech, in seconds.</param>
public readonly record struct ExportProgress(long Segments, double SpeechSeconds);
