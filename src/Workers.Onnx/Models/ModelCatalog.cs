using System.Text.Json;
using System.Text.Json.Serialization;

namespace Workers.Onnx;

/// <summary>models.json: the models this project runs, each pinned to an npm
/// package version, a path inside it and a sha256. Files live under a models root (the repository's
/// <c>models/</c> folder by default); <c>workers models fetch</c> puts them there.</summary>
public sealed class ModelCatalog
{
    /// <summary>File name of the manifest inside the models root.</summary>
    public const string FileName = "models.json";

    /// <summary>Entry name of Silero VAD v5.</summary>
    public const string SileroVadV5 = "silero-vad-v5";

    /// <summary>Entry name of Silero VAD v6.</summary>
    public const string SileroVadV6 = "silero-vad-v6";

    /// <summary>The command that fixes a missing or mismatched file; every error here names it.</summary>
    public const string FetchCommand = "workers models fetch";

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower, allowIntegerValues: false) },
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
    };

    private ModelCatalog(IReadOnlyList<ModelEntry> models, string? sourcePath)
    {
        Models = models;
        SourcePath = sourcePath;
    }

    public IReadOnlyList<ModelEntry> Models { get; }

    /// <summary>The models.json this came from, when it came from a file.</summary>
    public string? SourcePath { get; }

    /// <summary>Reads and checks models.json at <paramref name="path"/> (a file, or a models root
    /// folder holding models.json).</summary>
    public static ModelCatalog Load(string path)
    {
        var file = Directory.Exists(path) ? Path.Combine(path, FileName) : path;
        if (!File.Exists(file)) throw new ModelStoreException($"No model manifest at {Path.GetFullPath(file)}.");
        return Parse(File.ReadAllText(file), Path.GetFullPath(file));
    }

    /// <summary>Parses and checks a models.json document; every problem is reported at once.</summary>
    public static ModelCatalog Parse(string json, string? sourcePath = null)
    {
        var where = sourcePath ?? "models.json";
        Document? doc;
        try
        {
            doc = JsonSerializer.Deserialize<Document>(json, Json);
        }
        catch (JsonException e)
        {
            throw new ModelStoreException($"{where} is not valid: {e.Message}", inner: e);
        }
        var models = doc?.Models ?? [];
        var problems = new List<string>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var files = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in models)
        {
            var label = string.IsNullOrWhiteSpace(m.Name) ? "(unnamed entry)" : m.Name;
            if (string.IsNullOrWhiteSpace(m.Name)) problems.Add("an entry has no name");
            else if (!names.Add(m.Name)) problems.Add($"{label}: the name is used twice");
            if (m.Source is null || !m.Source.IsLocal && (string.IsNullOrWhiteSpace(m.Source.Package) || string.IsNullOrWhiteSpace(m.Source.Version) || string.IsNullOrWhiteSpace(m.Source.Path)))
                problems.Add($"{label}: source needs package, version and path (an npm package), or local (a file of your own)");
            if (string.IsNullOrWhiteSpace(m.File) || Path.IsPathRooted(m.File) || m.File.Split('/', '\\').Contains(".."))
                problems.Add($"{label}: file must be a relative path inside the models root (is '{m.File}')");
            else if (!files.Add(m.File)) problems.Add($"{label}: file '{m.File}' is used by two entries");
            if (m.Sha256 is null || m.Sha256.Length != 64 || !m.Sha256.All(char.IsAsciiHexDigitLower))
                problems.Add($"{label}: sha256 must be 64 lower-case hex digits (is '{m.Sha256}')");
            if (m.SampleRate is <= 0) problems.Add($"{label}: sample_rate must be positive (is {m.SampleRate})");
        }
        if (models.Count == 0) problems.Add("no models listed");
        if (problems.Count > 0)
            throw new ModelStoreException($"{where} is not valid:{Environment.NewLine}" + string.Join(Environment.NewLine, problems.Select(p => "  - " + p)), problems);
        return new ModelCatalog(models, sourcePath);
    }

    /// <summary>The entry named <paramref name="name"/>.</summary>
    public ModelEntry Get(string name) =>
        Models.FirstOrDefault(m => m.Name == name)
        ?? throw new KeyNotFoundException($"{SourcePath ?? FileName} lists no '{name}'; it lists: {string.Join(", ", Models.Select(m => m.Name))}.");

    /// <summary>Full path of <paramref name="name"/>'s file under <paramref name="modelsRoot"/>,
    /// checked to be there with the pinned sha256 (hashes are remembered per file size and time, so
    /// asking again is cheap). Throws <see cref="ModelStoreException"/> naming <c>workers models fetch</c>.</summary>
    public string Resolve(string name, string modelsRoot)
    {
        var status = Inspect(Get(name), modelsRoot);
        if (status.State != ModelFileState.Ok) throw Problem([status]);
        return status.Path;
    }

    /// <summary>The state of every pinned file under <paramref name="modelsRoot"/>.</summary>
    public IReadOnlyList<ModelFileStatus> Inspect(string modelsRoot) => Models.Select(m => Inspect(m, modelsRoot)).ToList();

    /// <summary>Throws <see cref="ModelStoreException"/> listing every file that is missing or does
    /// not match its sha256, and naming <c>workers models fetch</c>; returns quietly when all are in place.</summary>
    public void Verify(string modelsRoot)
    {
        var bad = Inspect(modelsRoot).Where(s => s.State != ModelFileState.Ok).ToList();
        if (bad.Count > 0) throw Problem(bad);
    }

    internal static ModelFileStatus Inspect(ModelEntry entry, string modelsRoot)
    {
        var path = entry.PathUnder(modelsRoot);
        if (!File.Exists(path)) return new ModelFileStatus(entry, path, ModelFileState.Missing, null);
        var actual = FileHashes.Sha256(path);
        return new ModelFileStatus(entry, path, actual == entry.Sha256 ? ModelFileState.Ok : ModelFileState.HashMismatch, actual);
    }

    private ModelStoreException Problem(IReadOnlyList<ModelFileStatus> bad)
    {
        var lines = bad.Select(s => s.ToString()).ToList();
        var manifest = SourcePath is null ? "" : $" (as pinned in {SourcePath})";
        return new ModelStoreException(
            $"Model files are not in place ({lines.Count}):{Environment.NewLine}" +
            string.Join(Environment.NewLine, lines.Select(l => "  - " + l)) + Environment.NewLine +
            $"Run `{FetchCommand}` to fetch and verify them{manifest}.",
            lines);
    }

    private sealed record Document(List<ModelEntry>? Models);
}
