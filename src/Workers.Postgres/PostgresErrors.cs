using System.Net.Sockets;
using Npgsql;

namespace Workers.Postgres;

/// <summary>
/// What Npgsql's and PostgreSQL's errors mean to a caller: the one rule, kept beside the data access
/// that raises them, for whether a failed database call is worth retrying (Workers.Fleet's retry
/// pipelines, <c>DatabaseRetry</c>, call it).
/// </summary>
public static class PostgresErrors
{
    /// <summary>
    /// True for a fault that passes by itself: connection refused or reset, server restarting or
    /// shutting down, too many connections, serialization failure or deadlock, and a failover in
    /// progress (see <see cref="IsNoWritableHostYet"/>). False for everything a retry cannot fix
    /// (bad password, missing table, a constraint violated).
    /// </summary>
    public static bool IsTransient(Exception e) => e switch
    {
        PostgresException pg => pg.IsTransient || pg.SqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CannotConnectNow
            or PostgresErrorCodes.TooManyConnections or PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected,
        NpgsqlException npg => npg.IsTransient || npg.InnerException is SocketException or IOException or TimeoutException
            || IsNoWritableHostYet(npg),
        SocketException or TimeoutException => true,
        _ => false,
    };

    /// <summary>
    /// True when the database cannot be reached or is going away: connection refused or lost, shutting down or
    /// starting up, full, or a failover in progress (<see cref="IsNoWritableHostYet"/>). Narrower than
    /// <see cref="IsTransient"/> (a deadlock is transient but the database is up): what the dashboard answers
    /// 503 with Retry-After for.
    /// </summary>
    public static bool IsUnavailable(Exception e) => e switch
    {
        PostgresException pg => pg.SqlState.StartsWith("08", StringComparison.Ordinal) || pg.SqlState is PostgresErrorCodes.AdminShutdown
            or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.TooManyConnections,
        NpgsqlException npg => npg.IsTransient || npg.InnerException is SocketException or IOException or TimeoutException || IsNoWritableHostYet(npg),
        _ => false,
    };

    /// <summary>
    /// A multi-host connection string (Target Session Attributes=read-write) while a standby is being promoted:
    /// the old primary refuses connections and the standby still answers read-only. Npgsql then throws "No suitable
    /// host was found." with no inner exception when every reachable host was of the wrong kind, or "Unable to
    /// connect to a suitable host" wrapping each host's error in an <see cref="AggregateException"/>. Both end
    /// when the promotion does, so both are retried (issue 11: a worker waits out a failover, it does not die of it).
    /// </summary>
    private static bool IsNoWritableHostYet(NpgsqlException e) => e.InnerException switch
    {
        null => e.Message.StartsWith("No suitable host", StringComparison.Ordinal),
        AggregateException all => all.InnerExceptions.Count > 0 && all.InnerExceptions.All(IsTransient),
        _ => false,
    };
}
