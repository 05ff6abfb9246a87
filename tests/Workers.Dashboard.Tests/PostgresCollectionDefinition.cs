using Workers.Testing;

namespace Workers.Dashboard.Tests;

[CollectionDefinition(PostgresCollection.Name)]
public sealed class PostgresCollectionDefinition : ICollectionFixture<PostgresFixture>;
