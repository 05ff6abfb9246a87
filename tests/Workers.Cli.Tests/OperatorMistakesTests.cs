using Workers.Postgres.Migrations;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>
/// Issue 13, operator mistakes through the real executable: a database migrated by a newer release
/// (before: `migrate` said "up to date" and workers crash-looped), names that do not round-trip
/// (before: `--queue $'q1\n'` was accepted and that corpus never ran), and file names that drive the
/// terminal (before: printed raw by `enqueue` and `status`).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class OperatorMistakesTests(PostgresFixture pg) : IDisposable
{
    private readonly string _corpus = Directory.CreateTempSubdirectory("workers-cli-mistakes-").FullName;

    public void Dispose() => Directory.Delete(_corpus, true);

    private static Dictionary<string, string?> Env(TestSchema db) => new() { ["ConnectionStrings__Workers"] = db.ConnectionString };

    [Fact]
    public async Task Every_command_refuses_a_database_ahead_of_the_program_with_exit_2_naming_both_versions()
    {
        await using var db = await pg.CreateSchemaAsync();
        var newest = MigrationRunner.Embedded()[^1].Version;
        await db.ScalarAsync<int>("INSERT INTO schema_migrations (version, name, checksum) VALUES (@v, 'from_the_future', 'x') RETURNING version", ("v", newest + 1));
        TestAudio.WriteWav(Path.Combine(_corpus, "a.wav"), 2);

        foreach (var args in new[]
        {
            new[] { "migrate" }, ["status"], ["enqueue", _corpus, "--name", "x"], ["cancel", "x"], ["export", "x"],
            ["run", "--gpus", "none", "--cpu-workers", "1", "--until-idle"],
        })
        {
            var r = await WorkersProcess.RunAsync(Env(db), args);
            Assert.True(r.ExitCode == 2, $"workers {string.Join(' ', args)}: {r}");
            Assert.Contains($"version {newest + 1:000}", r.StdErr);
            Assert.Contains($"up to {newest:000}", r.StdErr);
            Assert.Contains("newer release", r.StdErr);
            Assert.DoesNotContain("up to date", r.StdOut);
        }
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM corpora"));
    }

    [Theory]
    [InlineData("--queue", "q1\n")]
    [InlineData("--queue", "..")]
    [InlineData("--name", "..")]
    [InlineData("--name", "team%2Fb")]
    [InlineData("--name", "evil\u202egnp")]
    public async Task Enqueue_refuses_a_name_that_does_not_round_trip_and_writes_nothing(string option, string value)
    {
        await using var db = await pg.CreateSchemaAsync();
        TestAudio.WriteWav(Path.Combine(_corpus, "a.wav"), 2);
        var r = await WorkersProcess.RunAsync(Env(db), "enqueue", _corpus, option == "--name" ? "--queue" : "--name", option == "--name" ? "default" : "ok", option, value);
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains(option, r.StdErr);
        Assert.DoesNotContain('\u202e', r.StdErr);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM corpora"));
    }

    [Fact]
    public async Task Run_refuses_a_queue_name_with_a_final_newline()
    {
        await using var db = await pg.CreateSchemaAsync();
        var r = await WorkersProcess.RunAsync(Env(db), "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle", "--queues", "default,q1\n");
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("--queues 'q1\\u000A'", r.StdErr);
    }

    [Fact]
    public async Task Enqueue_and_status_print_file_names_with_terminal_escapes_and_bidi_overrides_escaped()
    {
        await using var db = await pg.CreateSchemaAsync();
        TestAudio.WriteWav(Path.Combine(_corpus, "good.wav"), 2);
        // Broken files, so they are listed as failed by both commands; a title-setting OSC, a colour
        // change, and a right-to-left override that would show "evil.mp3" as "evilpm.3...".
        var names = new[] { "osc\u001b]0;owned\u0007.mp3", "red\u001b[31m.mp3", "evil\u202e3pm.mp3" };
        foreach (var n in names) await File.WriteAllTextAsync(Path.Combine(_corpus, n), "not audio");

        var e = await WorkersProcess.RunAsync(Env(db), "enqueue", _corpus, "--name", "hostile");
        Assert.True(e.ExitCode == 0, e.ToString());
        var s = await WorkersProcess.RunAsync(Env(db), "status", "hostile");
        Assert.True(s.ExitCode == 0, s.ToString());
        foreach (var output in new[] { e.StdOut, s.StdOut })
        {
            Assert.DoesNotContain('\u001b', output);
            Assert.DoesNotContain('\u0007', output);
            Assert.DoesNotContain('\u202e', output);
            Assert.Contains("osc\\u001B]0;owned\\u0007.mp3", output);
            Assert.Contains("red\\u001B[31m.mp3", output);
            Assert.Contains("evil\\u202E3pm.mp3", output);
        }
        // The database keeps the real names: only what is shown is escaped.
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM files WHERE path = @p", ("p", names[2])));
    }
}
