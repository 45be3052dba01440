internal import CLibPQ
import Foundation
import Synchronization

/// One libpq connection. The only type (with `NotificationListener`'s poll loop) that touches
/// `PGconn*`; it frees the connection and its cancel handle in `deinit`.
///
/// Every method except `cancel()` blocks and must run on the connection's own worker thread
/// (`BlockingWorker`), never on a Swift concurrency or NIO thread. That single-thread confinement
/// is what makes the `@unchecked Sendable` sound.
final class PGConnection: @unchecked Sendable {
    private let conn: OpaquePointer
    private let cancelHandle: OpaquePointer?
    private let cancelState = Mutex(CancelState())
    private var statements: [String: String] = [:]
    private var statementCounter = 0
    private let statementCacheCapacity: Int

    private struct CancelState {
        /// Set while a cancellable `PooledConnection.run` job owns the connection.
        var armed = false
        var queryInFlight = false
        var cancelRequested = false
    }

    struct Options: Sendable {
        var applicationName = "ctower"
        var connectTimeoutSeconds = 5
        /// Extra server settings sent in the startup packet (`options=-c name=value`).
        var serverSettings: [(String, String)] = [("DateStyle", "ISO, YMD"), ("TimeZone", "UTC")]
        var statementCacheCapacity = 256
    }

    private init(conn: OpaquePointer, statementCacheCapacity: Int) {
        self.conn = conn
        self.cancelHandle = PQgetCancel(conn)
        self.statementCacheCapacity = statementCacheCapacity
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
    }

    deinit {
        if let cancelHandle { PQfreeCancel(cancelHandle) }
        PQfinish(conn)
    }

    /// Connects (blocking). `conninfo` is a `postgresql://` URL or a `key=value` string; values
    /// it sets win over `options`.
    static func connect(conninfo: String, options: Options) throws -> PGConnection {
        let settings = options.serverSettings.map { "-c \($0.0)=\($0.1.replacingOccurrences(of: " ", with: "\\ "))" }
        let pairs: [(String, String)] = [
            ("application_name", options.applicationName),
            ("connect_timeout", String(options.connectTimeoutSeconds)),
            ("options", settings.joined(separator: " ")),
            ("dbname", conninfo),
        ]
        let keywords = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        var keywordPointers = keywords.map { UnsafePointer<CChar>($0) } + [nil]
        var valuePointers = values.map { UnsafePointer<CChar>($0) } + [nil]
        guard let conn = PQconnectdbParams(&keywordPointers, &valuePointers, 1) else {
            throw StoreError(.unavailable, "libpq could not allocate a connection")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let reason = Self.firstLine(PQerrorMessage(conn))
            PQfinish(conn)
            throw StoreError(.unavailable, "could not connect to PostgreSQL: \(reason)")
        }
        return PGConnection(conn: conn, statementCacheCapacity: options.statementCacheCapacity)
    }

    // MARK: - State

    /// Cheap liveness check without a round trip: reads whatever the server sent while the
    /// connection sat idle (a restart sends FATAL then closes), then asks libpq for the status.
    var isHealthy: Bool {
        if PQstatus(conn) != CONNECTION_OK { return false }
        if PQconsumeInput(conn) == 0 { return false }
        return PQstatus(conn) == CONNECTION_OK
    }

    var isBroken: Bool { PQstatus(conn) != CONNECTION_OK }

    enum TransactionState { case idle, active, inTransaction, failed, unknown }

    var transactionState: TransactionState {
        switch PQtransactionStatus(conn) {
        case PQTRANS_IDLE: return .idle
        case PQTRANS_ACTIVE: return .active
        case PQTRANS_INTRANS: return .inTransaction
        case PQTRANS_INERROR: return .failed
        default: return .unknown
        }
    }

    var backendPID: Int32 { PQbackendPID(conn) }

    // MARK: - Cancellation

    /// Starts a cancellable job: from now until `disarm()`, `cancel()` either interrupts the
    /// running query or stops the next one from starting.
    func arm() {
        cancelState.withLock { $0 = CancelState(armed: true) }
    }

    func disarm() {
        cancelState.withLock { $0 = CancelState() }
    }

    /// Asks the server to cancel the running query (thread-safe). Between queries of an armed
    /// job it makes the next query fail with `.cancelled` instead, so a cancel is never lost.
    func cancel() {
        cancelState.withLock { state in
            guard state.armed else { return }
            state.cancelRequested = true
            guard state.queryInFlight, let cancelHandle else { return }
            var buffer = [CChar](repeating: 0, count: 256)
            _ = PQcancel(cancelHandle, &buffer, Int32(buffer.count))
        }
    }

    private func beginQuery() throws {
        try cancelState.withLock { state in
            if state.cancelRequested { throw StoreError(.cancelled, "the task was cancelled") }
            state.queryInFlight = true
        }
    }

    /// Returns whether a cancel was requested while the query ran.
    @discardableResult
    private func endQuery() -> Bool {
        cancelState.withLock { state in
            state.queryInFlight = false
            return state.cancelRequested
        }
    }

    // MARK: - Queries

    /// Runs one statement with bound parameters (extended protocol), optionally through the
    /// per-connection prepared-statement cache.
    func query(_ text: String, _ bindings: [SQLBinding], prepared: Bool) throws -> QueryResult {
        var types: [Oid] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        var values: [UnsafeMutablePointer<CChar>?] = []
        types.reserveCapacity(bindings.count)
        defer { values.forEach { free($0) } }
        for binding in bindings {
            types.append(binding.typeOID)
            switch binding.storage {
            case .null:
                values.append(nil)
                lengths.append(0)
                formats.append(0)
            case .text(let string):
                if string.utf8.contains(0) {
                    throw StoreError(.invalidValue, "text values cannot contain NUL characters")
                }
                values.append(strdup(string))
                lengths.append(0)
                formats.append(0)
            case .binary(let bytes):
                let buffer = malloc(max(bytes.count, 1))!.assumingMemoryBound(to: CChar.self)
                bytes.withUnsafeBytes { raw in
                    if let base = raw.baseAddress { memcpy(buffer, base, bytes.count) }
                }
                values.append(buffer)
                lengths.append(Int32(bytes.count))
                formats.append(1)
            }
        }
        if text.utf8.contains(0) { throw StoreError(.invalidQuery, "SQL text cannot contain NUL characters") }

        var statementName: String?
        if prepared && statementCacheCapacity > 0 {
            let key = text + "\u{1}" + types.map(String.init).joined(separator: ",")
            if let name = statements[key] {
                statementName = name
            } else {
                if statements.count >= statementCacheCapacity { deallocateAllStatements() }
                statementCounter += 1
                let name = "ctower_s\(statementCounter)"
                try beginQuery()
                let prepareResult = PQprepare(conn, name, text, Int32(types.count), types)
                let cancelled = endQuery()
                try consume(prepareResult, cancelled: cancelled)
                statements[key] = name
                statementName = name
            }
        }

        try beginQuery()
        let result: OpaquePointer? = values.withUnsafeBufferPointer { valueBuffer in
            valueBuffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { valuePointers in
                if let statementName {
                    return PQexecPrepared(
                        conn, statementName, Int32(bindings.count), valuePointers.baseAddress, lengths, formats, 0)
                }
                return PQexecParams(
                    conn, text, Int32(bindings.count), types, valuePointers.baseAddress, lengths, formats, 0)
            }
        }
        let cancelled = endQuery()
        return try consume(result, cancelled: cancelled)
    }

    /// Runs SQL text that may hold several statements (simple protocol, no parameters). Used for
    /// migrations and fixed commands like BEGIN/COMMIT.
    @discardableResult
    func simpleQuery(_ text: String) throws -> QueryResult {
        try beginQuery()
        let result = PQexec(conn, text)
        let cancelled = endQuery()
        return try consume(result, cancelled: cancelled)
    }

    private func deallocateAllStatements() {
        if let result = PQexec(conn, "DEALLOCATE ALL") { PQclear(result) }
        statements.removeAll()
    }

    /// Turns a PGresult into a `QueryResult` or a `StoreError`, and frees it.
    @discardableResult
    private func consume(_ result: OpaquePointer?, cancelled: Bool) throws -> QueryResult {
        guard let result else { throw connectionError() }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE:
            return Self.extractRows(result)
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY, PGRES_COPY_IN, PGRES_COPY_OUT:
            return QueryResult(columns: [], values: [], affectedRows: Self.commandCount(result))
        default:
            throw error(from: result, cancelled: cancelled)
        }
    }

    private func error(from result: OpaquePointer, cancelled: Bool) -> StoreError {
        func field(_ code: Character) -> String? {
            guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        let sqlState = field("C")
        if sqlState == nil, isBroken { return connectionError() }
        // A cached statement went stale (schema changed under it, or a pooler lost it): forget
        // the cache so the retried transaction prepares afresh. Names are never reused.
        if sqlState == "26000" || (sqlState == "0A000" && field("M")?.contains("cached plan") == true) {
            statements.removeAll()
        }
        let fields = ServerErrorFields(
            sqlState: sqlState, primaryMessage: field("M"), constraint: field("n"), table: field("t"),
            column: field("c"), dataType: field("d"))
        return StoreError(server: fields, taskCancelled: cancelled)
    }

    private func connectionError() -> StoreError {
        StoreError(.unavailable, "the connection to PostgreSQL was lost: \(Self.firstLine(PQerrorMessage(conn)))")
    }

    private static func extractRows(_ result: OpaquePointer) -> QueryResult {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [String] = []
        columns.reserveCapacity(columnCount)
        for column in 0..<columnCount {
            columns.append(String(cString: PQfname(result, Int32(column))))
        }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) != 0 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(row), Int32(column))))
                }
            }
            rows.append(values)
        }
        return QueryResult(columns: columns, values: rows, affectedRows: rowCount)
    }

    private static func commandCount(_ result: OpaquePointer) -> Int {
        guard let text = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: text)) ?? 0
    }

    static func firstLine(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "unknown error" }
        let text = String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.split(separator: "\n").first.map(String.init) ?? "unknown error"
    }

    // MARK: - COPY

    /// Starts `COPY … FROM STDIN`; follow with `putCopyData` and `endCopyIn`.
    func beginCopyIn(_ text: String) throws {
        try beginQuery()
        let result = PQexec(conn, text)
        let cancelled = endQuery()
        guard let result else { throw connectionError() }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COPY_IN else {
            if PQresultStatus(result) == PGRES_FATAL_ERROR { throw error(from: result, cancelled: cancelled) }
            throw StoreError(.invalidQuery, "the statement is not a COPY … FROM STDIN")
        }
    }

    func putCopyData(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        let status = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(conn, $0.baseAddress, Int32($0.count)) }
        }
        guard status == 1 else { throw connectionError() }
    }

    /// Ends COPY IN. With `abortReason` the server discards the rows and reports an error, which
    /// is swallowed here so the caller's own error wins.
    func endCopyIn(abortReason: String?) throws -> Int {
        try beginQuery()
        defer { endQuery() }
        guard PQputCopyEnd(conn, abortReason) == 1 else { throw connectionError() }
        var count = 0
        var failure: StoreError?
        while let result = PQgetResult(conn) {
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_COMMAND_OK: count = Self.commandCount(result)
            case PGRES_FATAL_ERROR: failure = failure ?? error(from: result, cancelled: false)
            default: break
            }
        }
        if abortReason == nil, let failure { throw failure }
        return count
    }

    /// Starts `COPY … TO STDOUT`; follow with `readCopyData` until it reports the end.
    func beginCopyOut(_ text: String) throws {
        try beginQuery()
        let result = PQexec(conn, text)
        let cancelled = endQuery()
        guard let result else { throw connectionError() }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COPY_OUT else {
            if PQresultStatus(result) == PGRES_FATAL_ERROR { throw error(from: result, cancelled: cancelled) }
            throw StoreError(.invalidQuery, "the statement is not a COPY … TO STDOUT")
        }
    }

    /// Reads whole COPY rows until about `maxBytes` are gathered. `finished` carries the row
    /// count once the server has sent everything.
    func readCopyData(maxBytes: Int) throws -> (chunk: [UInt8], finished: Int?) {
        var chunk: [UInt8] = []
        try beginQuery()
        var cancelled = false
        defer { _ = endQuery() }
        while chunk.count < maxBytes {
            var buffer: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(conn, &buffer, 0)
            if length > 0, let buffer {
                chunk.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: Int(length)))
                PQfreemem(buffer)
                continue
            }
            if length == -1 {
                cancelled = cancelState.withLock { $0.cancelRequested }
                var count = 0
                var failure: StoreError?
                while let result = PQgetResult(conn) {
                    defer { PQclear(result) }
                    switch PQresultStatus(result) {
                    case PGRES_COMMAND_OK: count = Self.commandCount(result)
                    case PGRES_FATAL_ERROR: failure = failure ?? error(from: result, cancelled: cancelled)
                    default: break
                    }
                }
                if let failure { throw failure }
                return (chunk, count)
            }
            throw connectionError()
        }
        return (chunk, nil)
    }

    // MARK: - LISTEN/NOTIFY

    var socket: Int32 { PQsocket(conn) }

    /// Reads pending input and returns the notifications it held.
    func drainNotifications() throws -> [StoreNotification] {
        guard PQconsumeInput(conn) == 1 else { throw connectionError() }
        var received: [StoreNotification] = []
        while let notify = PQnotifies(conn) {
            let channel = String(cString: notify.pointee.relname)
            let payload = notify.pointee.extra.map { String(cString: $0) } ?? ""
            received.append(StoreNotification(channel: channel, payload: payload, backendPID: notify.pointee.be_pid))
            PQfreemem(notify)
        }
        return received
    }
}
