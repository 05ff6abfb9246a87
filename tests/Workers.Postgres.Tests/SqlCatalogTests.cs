using Workers.Postgres.Sql;

namespace Workers.Postgres.Tests;

public sealed class SqlCatalogTests
{
    [Fact]
    public void Fragments_are_put_in_and_the_shard_filter_is_the_same_for_the_list_and_the_rerun()
    {
        foreach (var name in SqlCatalog.Names)
            Assert.DoesNotContain("{{", SqlCatalog.Get(name));
        Assert.Throws<KeyNotFoundException>(() => SqlCatalog.Get("ShardFilter")); // a fragment is not a statement

        // The file match (migration 010's trigram index serves it), the filter's last part.
        const string filePart = """lower(f.path) LIKE '%' || replace(replace(replace(lower(@file::text), '\', '\\'), '%', '\%'), '_', '\_') || '%'))""";
        Assert.Contains(filePart, SqlCatalog.Get("DashboardShardsPage"));
        Assert.Contains(filePart, SqlCatalog.Get("ShardsRerunDeadByFilter"));
        static string Filter(string sql) => sql[sql.IndexOf("AND (@queue::text", StringComparison.Ordinal)..(sql.IndexOf(filePart, StringComparison.Ordinal) + filePart.Length)];
        Assert.Equal(Filter(SqlCatalog.Get("DashboardShardsPage")), Filter(SqlCatalog.Get("ShardsRerunDeadByFilter")));
    }

    [Fact]
    public void Statements_that_take_no_parameters_name_the_same_constants_as_the_code()
    {
        // CREATE DATABASE and LISTEN take no parameters, so their names are written out in Sql/*.sql (issue 14: no SQL in C#).
        Assert.EndsWith($"\nCREATE DATABASE {Workers.Postgres.Cluster.LocalCluster.DatabaseName};", SqlCatalog.Get("DatabaseCreate"));
        Assert.EndsWith($"\nLISTEN {Workers.Postgres.Queue.ShardNotificationListener.Channel};", SqlCatalog.Get("ShardsListen"));
        Assert.Contains($"pg_notify('{Workers.Postgres.Queue.ShardNotificationListener.Channel}'", SqlCatalog.Get("ShardsNotify"));
    }

}
