import Synchronization

/// An async single-consumer queue of received messages, ended by a status. Producers are the
/// transports (any thread); the consumer is a handler or a client reading responses.
final class MessageQueue: Sendable {
    private struct State {
        var messages: [FramedMessage] = []
        var head = 0
        var end: RPCError?? = nil  // .some(nil) = finished OK
        var waiter: CheckedContinuation<Result<FramedMessage?, RPCError>, Never>?
    }

    private let state = Mutex(State())
    /// Called (outside the lock) when the consumer has taken every buffered message.
    private let onDrained: (@Sendable () -> Void)?

    init(onDrained: (@Sendable () -> Void)? = nil) {
        self.onDrained = onDrained
    }

    /// Messages received but not yet taken.
    var pendingCount: Int { state.withLock { $0.messages.count - $0.head } }

    func push(_ message: FramedMessage) {
        let waiter = state.withLock { state -> CheckedContinuation<Result<FramedMessage?, RPCError>, Never>? in
            guard state.end == nil else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.messages.append(message)
            return nil
        }
        waiter?.resume(returning: .success(message))
    }

    /// Ends the queue: nil means the peer finished normally. The first call wins.
    func finish(_ error: RPCError? = nil) {
        let waiter = state.withLock { state -> CheckedContinuation<Result<FramedMessage?, RPCError>, Never>? in
            guard state.end == nil else { return nil }
            state.end = .some(error)
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        if let waiter {
            if let error { waiter.resume(returning: .failure(error)) } else { waiter.resume(returning: .success(nil)) }
        }
    }

    /// Drops buffered messages and ends with `error` (e.g. the call was cancelled).
    func fail(_ error: RPCError) {
        let waiter = state.withLock { state -> CheckedContinuation<Result<FramedMessage?, RPCError>, Never>? in
            state.messages.removeAll()
            state.head = 0
            if state.end == nil || state.end! == nil { state.end = .some(error) }
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: .failure(error))
    }

    func next() async throws(RPCError) -> FramedMessage? {
        enum Immediate { case value(FramedMessage, drained: Bool), end(RPCError?), wait }
        let immediate = state.withLock { state -> Immediate in
            if state.head < state.messages.count {
                let message = state.messages[state.head]
                state.head += 1
                let drained = state.head == state.messages.count
                if drained {
                    state.messages.removeAll(keepingCapacity: true)
                    state.head = 0
                }
                return .value(message, drained: drained)
            }
            if let end = state.end { return .end(end) }
            return .wait
        }
        switch immediate {
        case .value(let message, let drained):
            if drained { onDrained?() }
            return message
        case .end(let error):
            if let error { throw error }
            return nil
        case .wait:
            let result = await withCheckedContinuation { continuation in
                let immediate = state.withLock { state -> Result<FramedMessage?, RPCError>? in
                    if state.head < state.messages.count {
                        let message = state.messages[state.head]
                        state.head += 1
                        return .success(message)
                    }
                    if let end = state.end {
                        if let error = end { return .failure(error) }
                        return .success(nil)
                    }
                    state.waiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
            return try result.get()
        }
    }
}
