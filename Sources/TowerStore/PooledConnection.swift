import Synchronization

/// A pool slot: one worker thread plus, when connected, the libpq connection it drives.
/// The connection is replaced when it breaks (server restart, network loss).
final class PooledConnection: Sendable {
    let worker: BlockingWorker
    private let current = Mutex<PGConnection?>(nil)
    private let lastUsedAt = Mutex(ContinuousClock.now)

    init(name: String) {
        worker = BlockingWorker(name: name)
    }

    var lastUsed: ContinuousClock.Instant { lastUsedAt.withLock { $0 } }

    /// Makes sure there is a healthy connection, reconnecting if needed.
    func ensureConnected(conninfo: String, options: PGConnection.Options) async throws {
        try await worker.run { [self] in
            if let connection = current.withLock({ $0 }), connection.isHealthy,
                connection.transactionState == .idle
            {
                return
            }
            current.withLock { $0 = nil }
            let connection = try PGConnection.connect(conninfo: conninfo, options: options)
            current.withLock { $0 = connection }
        }
    }

    /// Runs `body` with the connection on the worker thread. Cancelling the calling task sends a
    /// cancel request for the running query. A connection found broken afterwards is dropped.
    func run<Value: Sendable>(
        cancellable: Bool = true, _ body: @escaping @Sendable (PGConnection) throws -> Value
    ) async throws -> Value {
        guard let connection = current.withLock({ $0 }) else {
            throw StoreError(.unavailable, "no connection to PostgreSQL")
        }
        defer { lastUsedAt.withLock { $0 = .now } }
        let cancelled = Mutex(false)
        let work: @Sendable () throws -> Value = { [self] in
            connection.arm()
            defer { connection.disarm() }
            // Checked after arming: a cancel that came earlier is seen here, a later one by
            // the connection itself.
            if cancellable, cancelled.withLock({ $0 }) {
                throw StoreError(.cancelled, "the task was cancelled")
            }
            do {
                return try body(connection)
            } catch {
                if connection.isBroken { current.withLock { $0 = nil } }
                throw error
            }
        }
        guard cancellable else { return try await worker.run(work) }
        return try await withTaskCancellationHandler {
            try await worker.run(work)
        } onCancel: {
            cancelled.withLock { $0 = true }
            connection.cancel()
        }
    }

    func disconnect() {
        current.withLock { $0 = nil }
    }

    func shutdown() {
        let connection = current.withLock { value -> PGConnection? in
            defer { value = nil }
            return value
        }
        // The last reference is released on the worker thread, after any running job.
        worker.submit { _ = connection }
        worker.stop()
    }
}
