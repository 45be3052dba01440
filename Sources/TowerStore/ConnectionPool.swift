import Foundation
import Synchronization

/// A fixed-size pool of `PooledConnection`s. Waiting callers are served first come, first served;
/// a caller that waits longer than `maxWait` gets `StoreError.unavailable`.
final class ConnectionPool: Sendable {
    let configuration: StoreConfiguration
    private let state = Mutex(State())

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<PooledConnection, Error>
    }

    private struct State {
        var idle: [PooledConnection] = []
        var all: [PooledConnection] = []
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
    }

    private enum Decision {
        case ready(PooledConnection)
        case wait
        case closed
    }

    init(configuration: StoreConfiguration) {
        self.configuration = configuration
    }

    /// Checks out a connected slot, reconnecting it if its connection went away.
    func acquire(maxWait: Duration) async throws -> PooledConnection {
        let slot = try await checkout(maxWait: maxWait)
        do {
            try await slot.ensureConnected(conninfo: configuration.url, options: configuration.connectionOptions)
            return slot
        } catch {
            release(slot)
            throw error
        }
    }

    private func checkout(maxWait: Duration) async throws -> PooledConnection {
        let decision: Decision = state.withLock { state in
            if state.closed { return .closed }
            if let slot = state.idle.popLast() { return .ready(slot) }
            if state.all.count < configuration.poolSize {
                let slot = PooledConnection(name: "ctower-pg-\(state.all.count)")
                state.all.append(slot)
                return .ready(slot)
            }
            return .wait
        }
        switch decision {
        case .ready(let slot): return slot
        case .closed: throw StoreError(.unavailable, "the store is shut down")
        case .wait: break
        }
        let id = state.withLock { state -> UInt64 in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let timeout = Task { [weak self] in
            try await Task.sleep(for: maxWait)
            self?.failWaiter(
                id,
                StoreError(
                    .unavailable, "no database connection became free within \(maxWait) (pool size \(self?.configuration.poolSize ?? 0))"))
        }
        defer { timeout.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PooledConnection, Error>) in
                let immediate: Decision = state.withLock { state in
                    if state.closed { return .closed }
                    if let slot = state.idle.popLast() { return .ready(slot) }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return .wait
                }
                switch immediate {
                case .ready(let slot): continuation.resume(returning: slot)
                case .closed: continuation.resume(throwing: StoreError(.unavailable, "the store is shut down"))
                case .wait: break
                }
            }
        } onCancel: {
            failWaiter(id, StoreError(.cancelled, "cancelled while waiting for a database connection"))
        }
    }

    private func failWaiter(_ id: UInt64, _ error: StoreError) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: error)
    }

    /// Returns a slot to the pool or hands it straight to the longest waiter.
    func release(_ slot: PooledConnection) {
        let waiter = state.withLock { state -> Waiter? in
            if state.closed {
                return nil
            }
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.idle.append(slot)
            return nil
        }
        waiter?.continuation.resume(returning: slot)
        if state.withLock({ $0.closed }) { slot.shutdown() }
    }

    /// Drops every idle connection (they reconnect lazily), e.g. after the server restarted.
    func disconnectIdle() {
        for slot in state.withLock({ $0.idle }) { slot.disconnect() }
    }

    func shutdown() {
        let (slots, waiters) = state.withLock { state -> ([PooledConnection], [Waiter]) in
            state.closed = true
            defer {
                state.idle.removeAll()
                state.waiters.removeAll()
            }
            return (state.idle, state.waiters)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: StoreError(.unavailable, "the store is shut down")) }
        for slot in slots { slot.shutdown() }
    }
}
