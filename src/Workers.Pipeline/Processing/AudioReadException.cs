namespace Workers.Pipeline.Processing;

/// <summary>Decoding failed; the inner exception is the decoder's own, with its reason.</summary>
public sealed class AudioReadException(Exception inner) : Exception(inner.Message, inner);
