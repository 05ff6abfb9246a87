using Workers.Testing;

namespace Workers.Dashboard.BrowserTests;

[CollectionDefinition(PostgresCollection.Name)]
public sealed class PostgresCollectionDefinition : ICollectionFixture<PostgresFixture>;
