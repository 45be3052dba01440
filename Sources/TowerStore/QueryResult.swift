/// The rows of a query, copied out of libpq into Swift values.
public struct QueryResult: Sendable, RandomAccessCollection {
    /// Column names in result order.
    public let columns: [String]
    /// Rows affected by INSERT/UPDATE/DELETE/COPY (PostgreSQL's command tag count), or the row count.
    public let affectedRows: Int
    let columnIndex: [String: Int]
    let values: [[String?]]

    init(columns: [String], values: [[String?]], affectedRows: Int) {
        self.columns = columns
        self.values = values
        self.affectedRows = affectedRows
        var index: [String: Int] = [:]
        for (position, name) in columns.enumerated() where index[name] == nil { index[name] = position }
        columnIndex = index
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { values.count }
    public subscript(position: Int) -> Row { Row(result: self, index: position) }

    /// The single row of a query that must return exactly one, e.g. `INSERT … RETURNING`.
    public func one() throws -> Row {
        guard count == 1 else {
            throw StoreError(.invalidQuery, "expected exactly one row, got \(count)")
        }
        return self[0]
    }

    /// The first row, if any.
    public var firstRow: Row? { isEmpty ? nil : self[0] }
}

/// One row of a `QueryResult`. Decoding errors name the column and the type, never the value.
public struct Row: Sendable {
    let result: QueryResult
    let index: Int

    public var columns: [String] { result.columns }

    /// Decodes the column at `position` (0-based).
    public func decode<Value: SQLDecodable>(_ position: Int, as type: Value.Type = Value.self) throws -> Value {
        guard position >= 0, position < result.columns.count else {
            throw StoreError(.decoding, "column \(position) is out of range (the row has \(result.columns.count))")
        }
        return try decodeValue(result.values[index][position], column: result.columns[position])
    }

    /// Decodes the column named `name`.
    public func decode<Value: SQLDecodable>(_ name: String, as type: Value.Type = Value.self) throws -> Value {
        guard let position = result.columnIndex[name] else {
            throw StoreError(.decoding, "the result has no column \(name)")
        }
        return try decodeValue(result.values[index][position], column: name)
    }

    /// Decodes the leading columns as a tuple: `let (id, name) = try row.decode((UUID, String).self)`.
    public func decode<each Value: SQLDecodable>(_ types: (repeat each Value).Type) throws -> (repeat each Value) {
        var position = 0
        func next<V: SQLDecodable>(_ type: V.Type) throws -> V {
            defer { position += 1 }
            return try decode(position, as: V.self)
        }
        return (repeat try next((each Value).self))
    }

    /// Whether the column is SQL NULL.
    public func isNull(_ name: String) -> Bool {
        guard let position = result.columnIndex[name] else { return true }
        return result.values[index][position] == nil
    }

    private func decodeValue<Value: SQLDecodable>(_ text: String?, column: String) throws -> Value {
        guard let text else {
            if let null = Value.decodeSQLNull() { return null }
            throw StoreError(.decoding, "column \(column) is NULL but \(Value.self) is not optional", column: column)
        }
        guard let value = Value(sqlText: text) else {
            throw StoreError(.decoding, "column \(column) cannot be read as \(Value.self)", column: column)
        }
        return value
    }
}
