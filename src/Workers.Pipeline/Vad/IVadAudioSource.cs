namespace Workers.Pipeline.Vad;

/// <summary>The audio of one item, openable at any sample so a long item can be read as several sub-streams.</summary>
public interface IVadAudioSource
{
    /// <summary>
    /// A reader positioned <paramref name="startSample"/> samples into the item, ending where the
    /// item ends. Opened lazily, when the sub-stream gets a batch row.
    /// </summary>
    ISampleReader OpenAt(long startSample);
}
