// WorkersProcess, PostgresFixture and the models live in the shared test support project.
global using Workers.Testing;
