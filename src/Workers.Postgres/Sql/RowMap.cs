using System.Runtime.CompilerServices;
using Npgsql;

namespace Workers.Postgres.Sql;

/// <summary>
/// One result column a <see cref="RowMap{T}"/> reads: its name in the statement's result, and the
/// CLR type read from it (Npgsql's default type for the column's PostgreSQL type).
/// </summary>
public abstract class ResultColumn
{
    private protected ResultColumn(string name, Type type, bool allowsNull, int slot)
    {
        Name = name;
        Type = type;
        AllowsNull = allowsNull;
        Slot = slot;
    }

    /// <summary>The column's name in the statement's result (<c>RETURNING</c> or <c>SELECT</c> list).</summary>
    public string Name { get; }

    /// <summary>The CLR type read (for a nullable value type, the type under <see cref="Nullable{T}"/>).</summary>
    public Type Type { get; }

    /// <summary>Whether NULL is read (as null) rather than refused.</summary>
    public bool AllowsNull { get; }

    /// <summary>This column's place in its mapping's list: the index of its ordinal once a reader is bound.</summary>
    internal int Slot { get; }

    public override string ToString() => $"{Name} {Type.Name}{(AllowsNull ? "?" : "")}";
}

/// <summary>A result column read as <typeparamref name="T"/>.</summary>
public sealed class ResultColumn<T> : ResultColumn
{
    internal ResultColumn(string name, bool allowsNull, int slot)
        : base(name, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), allowsNull, slot) { }
}

/// <summary>A statement's row mapping without its row type: what the statement-shape test checks.</summary>
public abstract class RowMap
{
    private protected RowMap(string statement) => Statement = statement;

    /// <summary>The named statement (<see cref="SqlCatalog"/>) whose rows this maps.</summary>
    public string Statement { get; }

    /// <summary>The columns read, in the order the statement returns them.</summary>
    public abstract IReadOnlyList<ResultColumn> Columns { get; }
}

/// <summary>
/// The one mapping from a named statement's result rows to <typeparamref name="T"/>. The columns
/// are declared once, by name and type, in the order the statement returns them; a reader is bound
/// by resolving each name to its ordinal once (an exact, case-sensitive match), and each
/// row is then read through those ordinals with no allocation beyond the row object itself. Reading
/// by name keeps a reordered <c>RETURNING</c> list from being misread; the statement-shape test
/// (<c>StatementShapeTests</c>) prepares every statement against a migrated database and fails when
/// a statement's columns (names, types, order) and its mapping disagree.
/// </summary>
/// <example>
/// <code>
/// static readonly RowMap&lt;RescuedShard&gt; Rescued = new("ShardRescueExpired", c =>
/// {
///     var id = c.Column&lt;long&gt;("id");
///     var attempt = c.Column&lt;int&gt;("attempt");
///     var state = c.Column&lt;string&gt;("state");
///     return r => new RescuedShard(r.Get(id), r.Get(attempt), r.Get(state));
/// });
/// </code>
/// </example>
public sealed class RowMap<T> : RowMap
{
    private readonly ResultColumn[] _columns;
    private readonly Func<Row, T> _read;

    /// <param name="statement">The named statement in <c>Sql/*.sql</c>.</param>
    /// <param name="define">Declares the columns (in the statement's order) and returns the function that reads one row.</param>
    public RowMap(string statement, Func<ResultColumns, Func<Row, T>> define) : base(statement)
    {
        var columns = new ResultColumns();
        _read = define(columns);
        _columns = columns.Declared.ToArray();
        if (_columns.Length == 0)
            throw new ArgumentException($"The row mapping of statement '{statement}' declares no column.", nameof(define));
    }

    public override IReadOnlyList<ResultColumn> Columns => _columns;

    /// <summary>Resolves this mapping's columns in <paramref name="reader"/>'s current result by name.</summary>
    /// <exception cref="InvalidOperationException">The result lacks a column the mapping reads.</exception>
    public Rows Bind(NpgsqlDataReader reader)
    {
        var ordinals = new int[_columns.Length];
        for (var i = 0; i < _columns.Length; i++)
            ordinals[i] = Ordinal(reader, _columns[i].Name);
        return new Rows(this, reader, ordinals);
    }

    /// <summary>Runs <paramref name="cmd"/> and maps every row.</summary>
    public async Task<List<T>> ListAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var rows = Bind(reader);
        var list = new List<T>();
        while (await reader.ReadAsync(ct))
            list.Add(rows.Read());
        return list;
    }

    /// <summary>Runs <paramref name="cmd"/> and maps its first row; <c>default</c> when it returns none
    /// (a fenced <c>UPDATE ... RETURNING</c> that matched nothing).</summary>
    public async Task<T?> FirstOrDefaultAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var rows = Bind(reader);
        return await reader.ReadAsync(ct) ? rows.Read() : default;
    }

    /// <summary>Runs <paramref name="cmd"/>, which always returns one row (an aggregate), and maps it.</summary>
    public async Task<T> SingleAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var rows = Bind(reader);
        return await reader.ReadAsync(ct)
            ? rows.Read()
            : throw new InvalidOperationException($"Statement '{Statement}' returned no row; it always returns one (see Sql/*.sql).");
    }

    private int Ordinal(NpgsqlDataReader reader, string name)
    {
        for (var i = 0; i < reader.FieldCount; i++)
            if (string.Equals(reader.GetName(i), name, StringComparison.Ordinal))
                return i;
        throw MissingColumn(reader, name);
    }

    private InvalidOperationException MissingColumn(NpgsqlDataReader reader, string name) => new(
        $"Statement '{Statement}' returned no column '{name}' (it returned: " +
        $"{string.Join(", ", Enumerable.Range(0, reader.FieldCount).Select(reader.GetName))}). Its row mapping and Sql/*.sql disagree: " +
        "fix the one that changed (StatementShapeTests catches this before a worker does).");

    /// <summary>A reader bound to this mapping: <see cref="Read"/> maps the current row.</summary>
    public sealed class Rows
    {
        private readonly RowMap<T> _map;
        private readonly NpgsqlDataReader _reader;
        private readonly int[] _ordinals;

        internal Rows(RowMap<T> map, NpgsqlDataReader reader, int[] ordinals) => (_map, _reader, _ordinals) = (map, reader, ordinals);

        /// <summary>Maps the reader's current row.</summary>
        public T Read() => _map._read(new Row(_reader, _ordinals));
    }
}

/// <summary>Declares a mapping's columns, in the order the statement returns them.</summary>
public sealed class ResultColumns
{
    internal List<ResultColumn> Declared { get; } = [];

    /// <summary>A column read as <typeparamref name="T"/>; NULL is read as null only when <typeparamref name="T"/> is a nullable value type.</summary>
    public ResultColumn<T> Column<T>(string name) =>
        Add(new ResultColumn<T>(name, Nullable.GetUnderlyingType(typeof(T)) is not null, Declared.Count));

    /// <summary>A column of a reference type (text, arrays) that may be NULL, read as null.</summary>
    public ResultColumn<T?> NullableColumn<T>(string name) where T : class =>
        Add(new ResultColumn<T?>(name, allowsNull: true, Declared.Count));

    private TColumn Add<TColumn>(TColumn column) where TColumn : ResultColumn
    {
        if (Declared.Any(c => c.Name == column.Name))
            throw new ArgumentException($"Column '{column.Name}' is declared twice in one row mapping.", nameof(column));
        Declared.Add(column);
        return column;
    }
}

/// <summary>The current row of a bound reader, read through ordinals resolved by name once per reader.</summary>
public readonly struct Row
{
    private readonly NpgsqlDataReader _reader;
    private readonly int[] _ordinals;

    internal Row(NpgsqlDataReader reader, int[] ordinals) => (_reader, _ordinals) = (reader, ordinals);

    /// <summary>The value of <paramref name="column"/> in this row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T Get<T>(ResultColumn<T> column)
    {
        var ordinal = _ordinals[column.Slot];
        return column.AllowsNull && _reader.IsDBNull(ordinal) ? default! : _reader.GetFieldValue<T>(ordinal);
    }
}
