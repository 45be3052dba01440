import Foundation
import Synchronization

/// An open transaction, handed to the body of `Store.withTransaction`. Valid only inside that body.
public final class Transaction: Sendable {
    /// The org this transaction is scoped to (`ctower.org_id`), if any.
    public let tenant: OrgID?
    /// The acting user (`ctower.user_id`), if any.
    public let user: UserID?
    /// The caller's deadline, if any; also applied as `statement_timeout`.
    public let deadline: ContinuousClock.Instant?

    private let slot: PooledConnection
    private let open = Mutex(true)

    init(slot: PooledConnection, tenant: OrgID?, user: UserID?, deadline: ContinuousClock.Instant?) {
        self.slot = slot
        self.tenant = tenant
        self.user = user
        self.deadline = deadline
    }

    func close() { open.withLock { $0 = false } }

    private func checkUsable() throws {
        guard open.withLock({ $0 }) else {
            throw StoreError(.invalidQuery, "the transaction is over; use it only inside withTransaction's body")
        }
        if Task.isCancelled { throw StoreError(.cancelled, "the task was cancelled") }
    }

    /// Runs a statement and returns its rows.
    ///
    /// - Parameter prepared: whether to go through the connection's prepared-statement cache.
    ///   Leave it on for statements run often; turn it off for one-off dynamic SQL.
    @discardableResult
    public func query(_ sql: SQL, prepared: Bool = true) async throws -> QueryResult {
        try checkUsable()
        let (text, bindings) = sql.rendered
        return try await slot.run { connection in
            try connection.query(text, bindings, prepared: prepared)
        }
    }

    /// Runs a statement and returns how many rows it affected.
    @discardableResult
    public func execute(_ sql: SQL, prepared: Bool = true) async throws -> Int {
        try await query(sql, prepared: prepared).affectedRows
    }

    /// Sends a notification delivered at commit (`pg_notify`).
    public func notify(channel: String, payload: String = "") async throws {
        try await execute("SELECT pg_notify(\(channel), \(payload))")
    }

    // MARK: - COPY

    /// Streams `COPY … FROM STDIN` data. `chunks` are raw COPY bytes in the statement's format
    /// (see `CopyText` for the text format); they need not align with rows.
    /// PostgreSQL refuses COPY FROM into row-level-secured tables for the app role: use
    /// `bulkInsert(into:columns:from:)` for tenant tables.
    /// Returns the number of rows copied. If `chunks` throws, the COPY is aborted and the error
    /// rethrown.
    @discardableResult
    public func copyIn<Chunks: AsyncSequence>(_ sql: SQL, from chunks: Chunks) async throws -> Int
    where Chunks.Element == [UInt8] {
        try checkUsable()
        let text = try Self.copyText(sql)
        try await slot.run { connection in try connection.beginCopyIn(text) }
        do {
            var buffer: [UInt8] = []
            for try await chunk in chunks {
                buffer += chunk
                if buffer.count >= 64 * 1024 {
                    let batch = buffer
                    buffer.removeAll(keepingCapacity: true)
                    try await slot.run { connection in try connection.putCopyData(batch) }
                }
                if Task.isCancelled { throw StoreError(.cancelled, "the task was cancelled during COPY") }
            }
            let batch = buffer
            return try await slot.run(cancellable: false) { connection in
                try connection.putCopyData(batch)
                return try connection.endCopyIn(abortReason: nil)
            }
        } catch {
            _ = try? await slot.run(cancellable: false) { connection in
                try connection.endCopyIn(abortReason: "aborted by the client")
            }
            throw error
        }
    }

    /// Copies rows given as text values (nil is NULL) with `COPY … FROM STDIN` in text format.
    @discardableResult
    public func copyIn(_ sql: SQL, rows: [[String?]]) async throws -> Int {
        var bytes: [UInt8] = []
        for row in rows { CopyText.appendRow(row, to: &bytes) }
        return try await copyIn(sql, from: SingleChunk(bytes: bytes))
    }

    /// Bulk-inserts COPY text-format rows into a tenant table.
    ///
    /// PostgreSQL refuses `COPY … FROM` into a table with row-level security for a role subject
    /// to it, so the rows are copied into a transaction-local staging table first and moved with
    /// one `INSERT … SELECT`, where the table's policies (WITH CHECK) and constraints apply.
    /// Returns the number of rows inserted.
    @discardableResult
    public func bulkInsert<Chunks: AsyncSequence>(
        into table: String, columns: [String], from chunks: Chunks
    ) async throws -> Int where Chunks.Element == [UInt8] {
        let staging = "ctower_copy_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let columnList = columns.map(SQL.quoteIdentifier).joined(separator: ", ")
        try await execute(
            """
            CREATE TEMP TABLE \(identifier: staging) ON COMMIT DROP AS \
            SELECT \(unsafeRaw: columnList) FROM \(identifier: table) WITH NO DATA
            """, prepared: false)
        try await copyIn("COPY \(identifier: staging) (\(unsafeRaw: columnList)) FROM STDIN", from: chunks)
        let inserted = try await execute(
            """
            INSERT INTO \(identifier: table) (\(unsafeRaw: columnList)) \
            SELECT \(unsafeRaw: columnList) FROM \(identifier: staging)
            """, prepared: false)
        try await execute("DROP TABLE \(identifier: staging)", prepared: false)
        return inserted
    }

    /// `bulkInsert` for rows given as text values (nil is NULL).
    @discardableResult
    public func bulkInsert(into table: String, columns: [String], rows: [[String?]]) async throws -> Int {
        var bytes: [UInt8] = []
        for row in rows { CopyText.appendRow(row, to: &bytes) }
        return try await bulkInsert(into: table, columns: columns, from: SingleChunk(bytes: bytes))
    }

    /// Streams `COPY … TO STDOUT`: `handler` receives chunks of whole rows (about `chunkSize`
    /// bytes each) in the statement's format. Returns the number of rows copied.
    @discardableResult
    public func copyOut(
        _ sql: SQL, chunkSize: Int = 64 * 1024, _ handler: ([UInt8]) async throws -> Void
    ) async throws -> Int {
        try checkUsable()
        let text = try Self.copyText(sql)
        try await slot.run { connection in try connection.beginCopyOut(text) }
        while true {
            let (chunk, finished) = try await slot.run { connection in
                try connection.readCopyData(maxBytes: chunkSize)
            }
            if !chunk.isEmpty { try await handler(chunk) }
            if let finished { return finished }
        }
    }

    /// COPY cannot take bound parameters; refuse rather than silently inline values.
    private static func copyText(_ sql: SQL) throws -> String {
        let (text, bindings) = sql.rendered
        guard bindings.isEmpty else {
            throw StoreError(
                .invalidQuery, "COPY statements cannot take bound parameters; filter with a query inside COPY (…) instead")
        }
        return text
    }
}

/// An async sequence of one chunk.
struct SingleChunk: AsyncSequence, Sendable {
    typealias Element = [UInt8]
    let bytes: [UInt8]
    struct AsyncIterator: AsyncIteratorProtocol {
        var bytes: [UInt8]?
        mutating func next() async throws -> [UInt8]? {
            defer { bytes = nil }
            return bytes
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bytes: bytes) }
}
