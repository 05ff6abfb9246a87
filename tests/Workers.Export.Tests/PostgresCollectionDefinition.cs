using Workers.Testing;

namespace Workers.Export.Tests;

[CollectionDefinition(PostgresCollection.Name)]
public sealed class PostgresCollectionDefinition : ICollectionFixture<PostgresFixture>;
