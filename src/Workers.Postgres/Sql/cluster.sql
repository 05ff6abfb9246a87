-- Local cluster statements (Cluster/LocalCluster.cs), run on its maintenance database "postgres".

-- name: DatabaseExists
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = @name) AS found;

-- name: DatabaseCreate
-- The name is LocalCluster.DatabaseName; CREATE DATABASE takes no parameters.
CREATE DATABASE workers;
