using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Workers.Cli.Tests;

/// <summary>
/// The deployment files under ops/ (issue "Fleet", item 5): the Kubernetes manifests parse and hold what a GPU
/// fleet needs, and the systemd units hold the keys the drain and hardening depend on.
/// YAML is parsed with PyYAML (Debian python3-yaml) when python3 can import it, and always also with a small
/// line-based reader, so the checks run on a machine without it too. Units are read as INI always, and
/// checked by <c>systemd-analyze verify</c> where that binary exists.
/// </summary>
public sealed class OpsFilesTests : IDisposable
{
    private static readonly string Root = FindRepoRoot();

    /// <summary>Fleet:DrainSeconds when a unit or manifest does not set it: appsettings.json's value, else 120.</summary>
    private static readonly int DefaultDrainSeconds =
        JsonNode.Parse(File.ReadAllText(Path.Combine(Root, "appsettings.json")))?["Fleet"]?["DrainSeconds"]?.GetValue<int>() ?? 120;
    private static readonly string K8s = Path.Combine(Root, "ops", "k8s");
    private static readonly string Systemd = Path.Combine(Root, "ops", "systemd");

    private readonly string _tmp = Directory.CreateTempSubdirectory("workers-ops-").FullName;

    public void Dispose() => Directory.Delete(_tmp, true);

    // ---------------------------------------------------------------- Kubernetes

    [Fact]
    public void K8s_manifests_parse_with_a_real_yaml_parser_and_hold_the_fleet_objects()
    {
        var docs = ParseWithPyYaml(K8s);
        if (docs is null) return; // no python3 + PyYAML here; the line-based test below still runs
        CheckManifests(docs);
    }

    [Fact]
    public void K8s_manifests_hold_the_fleet_objects_read_line_by_line() => CheckManifests(ParseLineBased(K8s));

    [Fact]
    public void K8s_checks_fail_when_the_grace_period_is_not_longer_than_the_drain()
    {
        var dir = CopyK8s();
        var ds = Path.Combine(dir, "node-daemonset.yaml");
        File.WriteAllText(ds, Regex.Replace(File.ReadAllText(ds), @"terminationGracePeriodSeconds: \d+", "terminationGracePeriodSeconds: 120"));
        Assert.ThrowsAny<Exception>(() => CheckManifests(ParseLineBased(dir)));
        if (ParseWithPyYaml(dir) is { } docs) Assert.ThrowsAny<Exception>(() => CheckManifests(docs));
    }

    [Fact]
    public void K8s_checks_fail_when_the_daemonset_asks_for_no_gpu_or_names_another_secret()
    {
        var dir = CopyK8s();
        var ds = Path.Combine(dir, "node-daemonset.yaml");
        var text = File.ReadAllText(ds);
        File.WriteAllText(ds, text.Replace("nvidia.com/gpu: 1", "cpu: \"8\""));
        Assert.ThrowsAny<Exception>(() => CheckManifests(ParseLineBased(dir)));
        if (ParseWithPyYaml(dir) is { } a) Assert.ThrowsAny<Exception>(() => CheckManifests(a));

        File.WriteAllText(ds, text.Replace("name: workers-db", "name: another-secret"));
        Assert.ThrowsAny<Exception>(() => CheckManifests(ParseLineBased(dir)));
        if (ParseWithPyYaml(dir) is { } b) Assert.ThrowsAny<Exception>(() => CheckManifests(b));
    }

    [Fact]
    public void Real_parser_and_line_reader_agree_on_every_document()
    {
        var real = ParseWithPyYaml(K8s);
        if (real is null) return;
        var lines = ParseLineBased(K8s);
        Assert.Equal(real.Select(d => $"{d.File}:{d.Root["kind"]}:{d.Root["metadata"]?["name"]}"),
                     lines.Select(d => $"{d.File}:{d.Root["kind"]}:{d.Root["metadata"]?["name"]}"));
        foreach (var (r, l) in real.Zip(lines))
            Assert.True(JsonNode.DeepEquals(r.Root, l.Root), $"{r.File} {r.Root["kind"]}: line reader differs from PyYAML\n{r.Root.ToJsonString()}\n{l.Root.ToJsonString()}");
    }

    private static void CheckManifests(IReadOnlyList<Doc> docs)
    {
        Assert.Equal(
            ["dashboard-deployment.yaml:Deployment", "dashboard-deployment.yaml:Service", "node-daemonset.yaml:DaemonSet", "secret.yaml:Secret"],
            docs.Select(d => $"{d.File}:{Str(d.Root["kind"])}").Order(StringComparer.Ordinal));
        foreach (var d in docs)
        {
            Assert.False(string.IsNullOrEmpty(Str(d.Root["apiVersion"])), $"{d.File}: apiVersion missing");
            Assert.False(string.IsNullOrEmpty(Str(d.Root["metadata"]?["name"])), $"{d.File}: metadata.name missing");
        }

        var secret = docs.Single(d => Str(d.Root["kind"]) == "Secret").Root;
        var secretName = Str(secret["metadata"]!["name"]);
        var secretData = (secret["stringData"] ?? secret["data"]) as JsonObject;
        Assert.True(secretData?.ContainsKey("ConnectionStrings__Workers") == true, "the Secret must hold ConnectionStrings__Workers");

        // The node DaemonSet: GPU machines, GPUs requested, the Secret in its environment, a grace period longer than the drain.
        var ds = docs.Single(d => Str(d.Root["kind"]) == "DaemonSet").Root;
        var pod = ds["spec"]!["template"]!["spec"]!;
        Assert.True(pod["nodeSelector"] is JsonObject { Count: > 0 } || pod["affinity"] is not null, "the DaemonSet must be kept to GPU nodes (nodeSelector or affinity)");
        Assert.True(pod["tolerations"] is JsonArray { Count: > 0 }, "the DaemonSet must tolerate the GPU nodes' taint");
        var worker = Assert.Single(pod["containers"]!.AsArray())!;
        var gpus = worker["resources"]?["limits"]?["nvidia.com/gpu"];
        Assert.True(gpus is not null && int.Parse(Str(gpus)) >= 1, "the node container must have resources.limits nvidia.com/gpu >= 1");
        Assert.Contains(secretName, SecretRefs(worker));
        Assert.Equal(["run", "--gpus", "auto", "--per-gpu", "1"], worker["args"]!.AsArray().Select(Str));
        Assert.Null(worker["livenessProbe"]); // a probe that kills a busy worker throws shard work away; see the manifest

        var env = worker["env"]?.AsArray().ToDictionary(e => Str(e!["name"]), e => e!["value"] is null ? null : Str(e["value"])) ?? [];
        var drain = env.TryGetValue("Fleet__DrainSeconds", out var v) && v is not null ? int.Parse(v) : DefaultDrainSeconds;
        var grace = int.Parse(Str(pod["terminationGracePeriodSeconds"] ?? throw new Xunit.Sdk.XunitException("terminationGracePeriodSeconds missing")));
        Assert.True(grace > drain, $"terminationGracePeriodSeconds {grace} must exceed the drain ({drain} s)");

        Assert.True(env.TryGetValue("Fleet__TempRoot", out var tempRoot) && tempRoot is not null, "Fleet__TempRoot must be set");
        var mount = worker["volumeMounts"]!.AsArray().Single(m => Str(m!["mountPath"]) == tempRoot)!;
        var volume = pod["volumes"]!.AsArray().Single(x => Str(x!["name"]) == Str(mount["name"]))!;
        Assert.True(volume["emptyDir"] is not null || volume["hostPath"] is not null, "the temp root must be an emptyDir or hostPath volume");

        // The dashboard: the same Secret, a ClusterIP Service selecting its pods.
        var dep = docs.Single(d => Str(d.Root["kind"]) == "Deployment").Root;
        var dash = Assert.Single(dep["spec"]!["template"]!["spec"]!["containers"]!.AsArray())!;
        Assert.Contains(secretName, SecretRefs(dash));
        Assert.Equal("serve", Str(dash["args"]![0]));
        var svc = docs.Single(d => Str(d.Root["kind"]) == "Service").Root;
        Assert.Equal("ClusterIP", Str(svc["spec"]!["type"] ?? "ClusterIP"));
        var podLabels = dep["spec"]!["template"]!["metadata"]!["labels"]!.AsObject();
        foreach (var (k, value) in svc["spec"]!["selector"]!.AsObject())
            Assert.Equal(Str(value), Str(podLabels[k]));
    }

    private static IEnumerable<string> SecretRefs(JsonNode container) =>
        (container["envFrom"]?.AsArray().Select(e => e?["secretRef"]?["name"]) ?? [])
        .Concat(container["env"]?.AsArray().Select(e => e?["valueFrom"]?["secretKeyRef"]?["name"]) ?? [])
        .Where(n => n is not null).Select(n => Str(n));

    private static string Str(JsonNode? n) => n switch
    {
        null => "",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => n.ToJsonString(),
    };

    private sealed record Doc(string File, JsonNode Root);

    /// <summary>Every YAML document under <paramref name="dir"/>, parsed by PyYAML; null when python3 cannot import yaml.</summary>
    private static List<Doc>? ParseWithPyYaml(string dir)
    {
        const string script = "import sys, json, yaml\n" +
                              "out = []\n" +
                              "for f in sys.argv[1:]:\n" +
                              "    with open(f) as h:\n" +
                              "        out += [{'file': f, 'doc': d} for d in yaml.safe_load_all(h) if d is not None]\n" +
                              "json.dump(out, sys.stdout)\n";
        var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var f in YamlFiles(dir)) psi.ArgumentList.Add(f);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception) { return null; } // no python3
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0 && stderr.Contains("No module named 'yaml'")) return null;
            Assert.True(p.ExitCode == 0, $"PyYAML could not parse the manifests:\n{stderr}");
            return JsonNode.Parse(stdout.Result)!.AsArray()
                .Select(x => new Doc(Path.GetFileName(Str(x!["file"])), x["doc"]!.DeepClone())).ToList();
        }
    }

    private static IEnumerable<string> YamlFiles(string dir)
    {
        var files = Directory.GetFiles(dir, "*.yaml").Concat(Directory.GetFiles(dir, "*.yml")).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(files);
        return files;
    }

    /// <summary>
    /// A line reader for the YAML subset these manifests use (block mappings and sequences, comments, flow
    /// sequences of scalars, quoted scalars, `---`). It throws on anything else rather than guess.
    /// </summary>
    private static List<Doc> ParseLineBased(string dir)
    {
        var docs = new List<Doc>();
        foreach (var file in YamlFiles(dir))
        {
            var chunk = new List<(int Indent, string Text, int Line)>();
            var n = 0;
            foreach (var raw in File.ReadAllLines(file).Append("---"))
            {
                n++;
                if (raw.TrimEnd() == "---")
                {
                    if (chunk.Count > 0)
                    {
                        var pos = 0;
                        docs.Add(new Doc(Path.GetFileName(file), ReadBlock(chunk, ref pos, chunk[0].Indent, file)));
                        Assert.True(pos == chunk.Count, $"{file}:{chunk[Math.Min(pos, chunk.Count - 1)].Line}: unexpected indentation");
                    }
                    chunk.Clear();
                    continue;
                }
                var text = StripComment(raw).TrimEnd();
                if (text.Trim().Length == 0) continue;
                Assert.DoesNotContain('\t', text);
                chunk.Add((text.Length - text.TrimStart().Length, text.Trim(), n));
            }
        }
        return docs;
    }

    private static JsonNode ReadBlock(List<(int Indent, string Text, int Line)> lines, ref int pos, int indent, string file)
    {
        if (lines[pos].Text.StartsWith("- ", StringComparison.Ordinal) || lines[pos].Text == "-")
        {
            var arr = new JsonArray();
            while (pos < lines.Count && lines[pos].Indent == indent && (lines[pos].Text.StartsWith("- ", StringComparison.Ordinal) || lines[pos].Text == "-"))
            {
                var rest = lines[pos].Text[1..].TrimStart();
                if (rest.Length == 0) { pos++; arr.Add(ReadBlock(lines, ref pos, lines[pos].Indent, file)); continue; }
                // "- key: value" opens a mapping whose keys sit at the column after "- ".
                var inner = indent + (lines[pos].Text.Length - rest.Length);
                if (KeyValue(rest) is not null) { lines[pos] = (inner, rest, lines[pos].Line); arr.Add(ReadBlock(lines, ref pos, inner, file)); }
                else { arr.Add(Scalar(rest)); pos++; }
            }
            return arr;
        }
        var obj = new JsonObject();
        while (pos < lines.Count && lines[pos].Indent == indent)
        {
            var (line, lineNo) = (lines[pos].Text, lines[pos].Line);
            var kv = KeyValue(line) ?? throw new Xunit.Sdk.XunitException($"{file}:{lineNo}: expected `key: value`, got `{line}`");
            pos++;
            if (kv.Value.Length > 0) obj[kv.Key] = Scalar(kv.Value);
            else if (pos < lines.Count && (lines[pos].Indent > indent || (lines[pos].Indent == indent && lines[pos].Text.StartsWith("- ", StringComparison.Ordinal))))
                obj[kv.Key] = ReadBlock(lines, ref pos, lines[pos].Indent, file);
            else obj[kv.Key] = null;
        }
        return obj;
    }

    private static (string Key, string Value)? KeyValue(string s)
    {
        var m = Regex.Match(s, @"^(""[^""]*""|'[^']*'|[^\s'""\[{#][^:]*?):(?:\s+(.*))?$");
        return m.Success ? (m.Groups[1].Value.Trim('"', '\''), m.Groups[2].Value.Trim()) : null;
    }

    private static JsonNode? Scalar(string s)
    {
        if (s.StartsWith('[') && s.EndsWith(']'))
        {
            var arr = new JsonArray();
            foreach (Match m in Regex.Matches(s[1..^1], @"\s*(""[^""]*""|'[^']*'|[^,]+)\s*(?:,|$)"))
                arr.Add(Scalar(m.Groups[1].Value.Trim()));
            return arr;
        }
        if (s.Length >= 2 && (s[0] == '"' && s[^1] == '"' || s[0] == '\'' && s[^1] == '\'')) return JsonValue.Create(s[1..^1]);
        Assert.False(s.StartsWith('{') || s.StartsWith('|') || s.StartsWith('>') || s.StartsWith('&') || s.StartsWith('*'), $"unsupported YAML in the line reader: {s}");
        if (long.TryParse(s, out var l)) return JsonValue.Create(l);
        return s switch
        {
            "true" => JsonValue.Create(true),
            "false" => JsonValue.Create(false),
            "null" or "~" => null,
            _ => JsonValue.Create(s),
        };
    }

    private static string StripComment(string line)
    {
        var quote = '\0';
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quote != '\0') { if (c == quote) quote = '\0'; }
            else if (c is '"' or '\'') quote = c;
            else if (c == '#' && (i == 0 || char.IsWhiteSpace(line[i - 1]))) return line[..i];
        }
        return line;
    }

    private string CopyK8s()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_tmp, "k8s")).FullName;
        foreach (var f in Directory.GetFiles(K8s)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    // ---------------------------------------------------------------- systemd

    [Fact]
    public void Node_unit_drains_restarts_and_is_hardened() => CheckNodeUnit(ReadUnit(Path.Combine(Systemd, "workers-node.service")));

    [Fact]
    public void Dashboard_unit_serves_on_loopback_only() => CheckDashboardUnit(ReadUnit(Path.Combine(Systemd, "workers-dashboard.service")));

    [Fact]
    public void Environment_example_names_the_connection_string_and_its_file_mode()
    {
        var text = File.ReadAllText(Path.Combine(Systemd, "workers.env.example"));
        Assert.Matches(new Regex(@"^ConnectionStrings__Workers=\S+", RegexOptions.Multiline), text);
        Assert.Contains("0600", text);
        foreach (var line in text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')))
            Assert.Matches(@"^[A-Za-z_][A-Za-z0-9_]*=", line); // systemd EnvironmentFile syntax, no `export`
    }

    [Fact]
    public void Unit_checks_fail_when_the_stop_timeout_is_not_longer_than_the_drain_or_the_kill_mode_signals_every_worker()
    {
        var text = File.ReadAllText(Path.Combine(Systemd, "workers-node.service"));
        var shortStop = Path.Combine(_tmp, "short.service");
        File.WriteAllText(shortStop, Regex.Replace(text, @"^TimeoutStopSec=.*$", "TimeoutStopSec=90", RegexOptions.Multiline));
        Assert.ThrowsAny<Exception>(() => CheckNodeUnit(ReadUnit(shortStop)));
        var groupKill = Path.Combine(_tmp, "group.service");
        File.WriteAllText(groupKill, Regex.Replace(text, @"^KillMode=.*$", "", RegexOptions.Multiline));
        Assert.ThrowsAny<Exception>(() => CheckNodeUnit(ReadUnit(groupKill)));
    }

    [Fact]
    public void Units_pass_systemd_analyze_verify_where_it_exists()
    {
        if (Which("systemd-analyze") is not { } analyze) return; // not on this machine: the INI checks above still run
        var units = CopyUnitsForVerify();
        var (rc, output) = RunVerify(analyze, units);
        var complaints = output.Split('\n').Where(l => units.Any(u => l.Contains(Path.GetFileName(u), StringComparison.Ordinal))).ToList();
        Assert.True(complaints.Count == 0, "systemd-analyze verify:\n" + string.Join('\n', complaints));
        // A non-zero exit with no word about our units is the machine (no systemd manager usable here), not the files.
        _ = rc;

        // The check can fail: an unknown key and a bad value are reported.
        var broken = Path.Combine(Path.GetDirectoryName(units[0])!, "workers-broken.service");
        File.WriteAllText(broken, File.ReadAllText(units[0]) + "\n[Service]\nKillMode=mixedx\nNoSuchKey=1\n");
        var (_, brokenOutput) = RunVerify(analyze, [broken]);
        if (brokenOutput.Contains("workers-broken.service", StringComparison.Ordinal))
        {
            Assert.Contains("mixedx", brokenOutput);
            Assert.Contains("NoSuchKey", brokenOutput);
        }
    }

    private static void CheckNodeUnit(Dictionary<string, Dictionary<string, List<string>>> unit)
    {
        var svc = unit.GetValueOrDefault("Service") ?? throw new Xunit.Sdk.XunitException("no [Service] section");
        Assert.True(unit.ContainsKey("Unit") && unit.ContainsKey("Install"), "[Unit] and [Install] sections are required");
        Assert.Equal("/opt/workers/workers run --gpus auto --per-gpu 1", One(svc, "ExecStart"));
        CheckCommon(svc);
        Assert.Equal("mixed", One(svc, "KillMode")); // the supervisor forwards SIGTERM; a second one stops a worker at once

        var env = svc.GetValueOrDefault("Environment", []).SelectMany(e => e.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(e => e.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
        var drain = env.TryGetValue("Fleet__DrainSeconds", out var d) ? int.Parse(d) : DefaultDrainSeconds;
        var stop = Seconds(One(svc, "TimeoutStopSec"));
        Assert.True(stop > drain, $"TimeoutStopSec {stop} s must exceed the drain ({drain} s)");

        Assert.True(env.TryGetValue("Fleet__TempRoot", out var tempRoot), "Fleet__TempRoot must be set");
        var writable = svc.GetValueOrDefault("ReadWritePaths", []).SelectMany(p => p.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Select(p => p.TrimStart('-'));
        Assert.Contains(writable, p => tempRoot == p || tempRoot!.StartsWith(p.TrimEnd('/') + "/", StringComparison.Ordinal));
        Assert.NotEqual("yes", svc.GetValueOrDefault("PrivateDevices")?.LastOrDefault()); // it would hide /dev/nvidia*
    }

    private static void CheckDashboardUnit(Dictionary<string, Dictionary<string, List<string>>> unit)
    {
        var svc = unit["Service"];
        Assert.Equal("/opt/workers/workers serve --urls http://127.0.0.1:5080", One(svc, "ExecStart"));
        CheckCommon(svc);
        Assert.True(Seconds(One(svc, "TimeoutStopSec")) > 0);
    }

    private static void CheckCommon(Dictionary<string, List<string>> svc)
    {
        Assert.False(string.IsNullOrEmpty(One(svc, "User")));
        Assert.NotEqual("root", One(svc, "User"));
        Assert.StartsWith("/", One(svc, "WorkingDirectory"));
        Assert.Equal("/etc/workers/workers.env", One(svc, "EnvironmentFile").TrimStart('-'));
        Assert.Equal("on-failure", One(svc, "Restart"));
        Assert.True(Seconds(One(svc, "RestartSec")) > 0);
        Assert.Equal("SIGTERM", One(svc, "KillSignal"));
        Assert.Equal("yes", One(svc, "NoNewPrivileges"));
        Assert.Equal("strict", One(svc, "ProtectSystem"));
        Assert.Equal("yes", One(svc, "PrivateTmp"));
    }

    private static string One(Dictionary<string, List<string>> section, string key) =>
        section.TryGetValue(key, out var v) ? v[^1] : throw new Xunit.Sdk.XunitException($"{key}= missing");

    /// <summary>systemd time spans as these units write them: "180", "180s", "3min", "10s".</summary>
    private static int Seconds(string span)
    {
        var m = Regex.Match(span.Trim(), @"^(\d+)\s*(s|sec|min|m)?$");
        Assert.True(m.Success, $"unsupported time span `{span}`");
        var n = int.Parse(m.Groups[1].Value);
        return m.Groups[2].Value is "min" or "m" ? n * 60 : n;
    }

    /// <summary>A unit file as sections of keys, each with its values in order (systemd keys may repeat).</summary>
    private static Dictionary<string, Dictionary<string, List<string>>> ReadUnit(string path)
    {
        var sections = new Dictionary<string, Dictionary<string, List<string>>>();
        Dictionary<string, List<string>>? current = null;
        var n = 0;
        foreach (var raw in File.ReadAllLines(path))
        {
            n++;
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';') continue;
            Assert.False(line.EndsWith('\\'), $"{path}:{n}: keep each setting on one line");
            if (line.StartsWith('[') && line.EndsWith(']'))
            {
                current = sections.TryGetValue(line[1..^1], out var s) ? s : sections[line[1..^1]] = [];
                continue;
            }
            Assert.True(current is not null, $"{path}:{n}: setting outside a section");
            var eq = line.IndexOf('=');
            Assert.True(eq > 0, $"{path}:{n}: expected Key=Value");
            var key = line[..eq].Trim();
            var value = line[(eq + 1)..].Trim();
            if (!current!.TryGetValue(key, out var list)) current[key] = list = [];
            list.Add(value);
        }
        return sections;
    }

    /// <summary>Copies the units with the (not installed) workers binary replaced by /bin/true, so verify checks the rest.</summary>
    private string[] CopyUnitsForVerify()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_tmp, "units")).FullName;
        return Directory.GetFiles(Systemd, "*.service").Select(f =>
        {
            var to = Path.Combine(dir, Path.GetFileName(f));
            File.WriteAllText(to, File.ReadAllText(f).Replace("/opt/workers/workers ", "/bin/true "));
            return to;
        }).ToArray();
    }

    private static (int ExitCode, string Output) RunVerify(string analyze, IEnumerable<string> units)
    {
        var psi = new ProcessStartInfo(analyze) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "verify", "--man=no" }.Concat(units)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException("systemd-analyze verify took over 60 s"); }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    private static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':')
        .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Workers.sln"))) return d.FullName;
        throw new InvalidOperationException($"Workers.sln not found above {AppContext.BaseDirectory}");
    }
}
