import Foundation
import Logging

/// The entry point to PostgreSQL: a connection pool plus tenant-scoped transactions.
///
/// ```swift
/// let store = Store(configuration: StoreConfiguration(url: appURL))
/// let leads = try await store.withTransaction(tenant: org, user: user, deadline: deadline) { tx in
///     try await tx.query("SELECT id, first_name FROM leads WHERE county = \(county)")
/// }
/// ```
public final class Store: Sendable {
    public let configuration: StoreConfiguration
    let pool: ConnectionPool
    let logger: Logger

    public init(configuration: StoreConfiguration, logger: Logger = Logger(label: "ctower.store")) {
        self.configuration = configuration
        self.pool = ConnectionPool(configuration: configuration)
        self.logger = logger
    }

    deinit {
        pool.shutdown()
    }

    /// Runs `SELECT 1` on a pooled connection: for `/healthz` and readiness probes.
    public func checkHealth(deadline: ContinuousClock.Instant? = nil) async throws {
        try await withTransaction(tenant: nil, deadline: deadline, readOnly: true) { tx in
            _ = try await tx.query("SELECT 1")
        }
    }

    /// Transaction isolation levels.
    public enum IsolationLevel: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    /// Runs `body` in one transaction with the tenant and acting user set for row-level security.
    ///
    /// BEGIN, then `set_config('ctower.org_id', …, true)`, `set_config('ctower.user_id', …, true)`
    /// and the deadline as `statement_timeout` (all transaction-local, so a pooled connection
    /// never leaks a tenant), then `body`, then COMMIT — or ROLLBACK when `body` throws.
    /// Serialization failures and deadlocks run the whole body again, up to
    /// `configuration.maxTransactionAttempts` times, so `body` must not have side effects outside
    /// the database. Cancelling the task cancels the running query.
    ///
    /// - Parameters:
    ///   - tenant: the org whose rows are visible; `nil` makes every tenant table look empty.
    ///   - user: the acting user, readable in SQL as `ctower_current_user()`.
    ///   - deadline: when the caller stops waiting (e.g. the RPC deadline).
    @discardableResult
    public func withTransaction<Value>(
        tenant: OrgID?,
        user: UserID? = nil,
        deadline: ContinuousClock.Instant? = nil,
        isolation level: IsolationLevel = .readCommitted,
        readOnly: Bool = false,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (Transaction) async throws -> sending Value
    ) async throws -> sending Value {
        var attempt = 0
        while true {
            attempt += 1
            try Task.checkCancellation(as: StoreError(.cancelled, "the task was cancelled before the transaction began"))
            let timeoutMilliseconds = try Self.remainingMilliseconds(until: deadline)
            var maxWait = configuration.maxWait
            if let timeoutMilliseconds { maxWait = min(maxWait, .milliseconds(timeoutMilliseconds)) }
            let slot = try await pool.acquire(maxWait: maxWait)
            defer { pool.release(slot) }

            // BEGIN and the tenant settings: nothing has happened yet, so a dead connection here
            // is retried on a fresh one.
            let begin = "BEGIN ISOLATION LEVEL \(level.rawValue)\(readOnly ? " READ ONLY" : "")"
            var settings: SQL = """
                SELECT set_config('ctower.org_id', \(tenant?.description ?? ""), true), \
                set_config('ctower.user_id', \(user?.description ?? ""), true)
                """
            if let timeoutMilliseconds {
                settings = settings + ", set_config('statement_timeout', \(String(timeoutMilliseconds)), true)"
            }
            let (settingsText, settingsBindings) = settings.rendered
            do {
                try await slot.run { connection in
                    try connection.simpleQuery(begin)
                    _ = try connection.query(settingsText, settingsBindings, prepared: true)
                }
            } catch let error as StoreError {
                await rollback(slot)
                if error.code == .unavailable && attempt < configuration.maxTransactionAttempts { continue }
                throw error
            }

            let transaction = Transaction(slot: slot, tenant: tenant, user: user, deadline: deadline)
            do {
                let value = try await body(transaction)
                transaction.close()
                if Task.isCancelled {
                    throw StoreError(.cancelled, "the task was cancelled; the transaction was rolled back")
                }
                try await slot.run(cancellable: false) { connection in
                    if connection.transactionState == .failed {
                        throw StoreError(
                            .invalidQuery,
                            "the transaction was aborted by an earlier error that the body caught; rolled back")
                    }
                    try connection.simpleQuery("COMMIT")
                }
                return value
            } catch let error as StoreError
                where (error.isRetryableConflict || error.isStaleStatement) && attempt < configuration.maxTransactionAttempts
            {
                transaction.close()
                await rollback(slot)
                logger.debug(
                    "retrying transaction after a conflict",
                    metadata: ["attempt": "\(attempt)", "sqlstate": "\(error.sqlState ?? "")"])
                try? await Task.sleep(for: .milliseconds(Int.random(in: 2...20) * attempt))
                continue
            } catch {
                transaction.close()
                await rollback(slot)
                throw error
            }
        }
    }

    private func rollback(_ slot: PooledConnection) async {
        _ = try? await slot.run(cancellable: false) { connection in
            if connection.transactionState != .idle { try connection.simpleQuery("ROLLBACK") }
        }
    }

    /// Milliseconds left before `deadline`, at least 1; throws `.timeout` when it has passed.
    static func remainingMilliseconds(until deadline: ContinuousClock.Instant?) throws -> Int? {
        guard let deadline else { return nil }
        let remaining = ContinuousClock.now.duration(to: deadline)
        let milliseconds = remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000
        guard milliseconds > 0 else { throw StoreError(.timeout, "the deadline passed before the transaction began") }
        return Int(milliseconds)
    }

    /// Opens a dedicated connection that LISTENs on `channels` and delivers notifications as an
    /// `AsyncSequence`. It reconnects by itself; see `NotificationListener`.
    public func listen(to channels: [String]) async throws -> NotificationListener {
        try await NotificationListener.start(
            conninfo: configuration.url, options: configuration.connectionOptions, channels: channels, logger: logger)
    }

    /// Closes every connection. In-flight transactions finish first; later calls fail with `.unavailable`.
    public func shutdown() {
        pool.shutdown()
    }
}

extension Task where Success == Never, Failure == Never {
    static func checkCancellation(as error: StoreError) throws {
        if Task.isCancelled { throw error }
    }
}
