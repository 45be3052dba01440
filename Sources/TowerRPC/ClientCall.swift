import Synchronization

/// The request side of one client call, implemented by each transport.
protocol ClientCallTransport: Sendable {
    /// Sends one serialized message; with `endStream` the request side closes after it.
    func send(_ message: [UInt8], compress: Bool, endStream: Bool) async throws(RPCError)
    func closeSending()
    /// Abandons the call (RST_STREAM CANCEL on HTTP/2).
    func cancel()
}

/// One call on an `RPCChannel`, at the level of serialized messages: the raw primitive the typed
/// API (`unary`, `serverStreaming`, ...) is built on.
public final class ClientCall: Sendable {
    public let method: MethodDescriptor
    let transport: any ClientCallTransport
    let response: ClientResponseState
    let maxSendMessageSize: Int

    init(method: MethodDescriptor, transport: any ClientCallTransport, response: ClientResponseState, maxSendMessageSize: Int) {
        self.method = method
        self.transport = transport
        self.response = response
        self.maxSendMessageSize = maxSendMessageSize
    }

    /// Sends one serialized request message (compressed if the call options asked for it and
    /// `compress` is true). Suspends under flow control.
    public func send(_ message: [UInt8], compress: Bool = true, endStream: Bool = false) async throws(RPCError) {
        if message.count > maxSendMessageSize {
            let error = RPCError(
                .resourceExhausted, "Request message of \(message.count) bytes is larger than the limit of \(maxSendMessageSize) bytes.")
            cancel(with: error)
            throw error
        }
        try await transport.send(message, compress: compress, endStream: endStream)
    }

    /// Half-closes: no more request messages.
    public func closeSending() { transport.closeSending() }

    /// Cancels the call; pending and later reads fail with CANCELLED.
    public func cancel() {
        cancel(with: RPCError(.cancelled, "The call was cancelled by the client."))
    }

    func cancel(with error: RPCError) {
        if response.end(error: error, trailers: [:]) { transport.cancel() }
    }

    /// The response headers' metadata; waits for them. Throws the call's error when the server
    /// answered with trailers only.
    public func initialMetadata() async throws(RPCError) -> Metadata {
        try await response.initialMetadata()
    }

    /// The next serialized response message, or nil once the call ended with OK.
    public func nextMessage() async throws(RPCError) -> [UInt8]? {
        try await response.nextMessage()
    }

    /// The trailers; waits for the end of the call.
    public func trailingMetadata() async -> Metadata {
        await response.trailingMetadata()
    }

    var isFinished: Bool { response.isFinished }
}

/// The response side of a client call, fed by a transport from any thread.
final class ClientResponseState: Sendable {
    private struct State {
        var initialMetadata: Metadata?
        var trailers = Metadata()
        var outcome: RPCError?? = nil
        var compression: CompressionAlgorithm?
        var headerWaiters: [CheckedContinuation<Void, Never>] = []
        var endWaiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())
    let messages: MessageQueue
    let maxReceiveMessageSize: Int

    init(maxReceiveMessageSize: Int, onDrained: (@Sendable () -> Void)? = nil) {
        self.maxReceiveMessageSize = maxReceiveMessageSize
        self.messages = MessageQueue(onDrained: onDrained)
    }

    var isFinished: Bool { state.withLock { $0.outcome != nil } }

    func receiveHeaders(_ metadata: Metadata, compression: CompressionAlgorithm?) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.initialMetadata == nil, state.outcome == nil else { return [] }
            state.initialMetadata = metadata
            state.compression = compression
            defer { state.headerWaiters = [] }
            return state.headerWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func receiveMessage(_ message: FramedMessage) { messages.push(message) }

    /// Ends the call; returns false if it had already ended. `error` nil means OK.
    @discardableResult
    func end(error: RPCError?, trailers: Metadata) -> Bool {
        let result = state.withLock { state -> [CheckedContinuation<Void, Never>]? in
            guard state.outcome == nil else { return nil }
            state.outcome = .some(error)
            state.trailers = trailers
            defer {
                state.headerWaiters = []
                state.endWaiters = []
            }
            return state.headerWaiters + state.endWaiters
        }
        guard let waiters = result else { return false }
        if let error {
            messages.fail(error)
        } else {
            messages.finish()
        }
        for waiter in waiters { waiter.resume() }
        return true
    }

    func initialMetadata() async throws(RPCError) -> Metadata {
        while true {
            let current = state.withLock { state -> Result<Metadata, RPCError>? in
                if let metadata = state.initialMetadata { return .success(metadata) }
                if let outcome = state.outcome {
                    if let error = outcome { return .failure(error) }
                    return .success([:])
                }
                return nil
            }
            if let current { return try current.get() }
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Bool in
                    if state.initialMetadata != nil || state.outcome != nil { return true }
                    state.headerWaiters.append(continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
        }
    }

    func nextMessage() async throws(RPCError) -> [UInt8]? {
        guard let framed = try await messages.next() else { return nil }
        guard framed.compressed else { return framed.payload }
        let compression = state.withLock { $0.compression }
        guard let compression, compression != .identity else {
            throw RPCError(.internal, "Received a compressed message but the response has no grpc-encoding.")
        }
        return try compression.decompress(framed.payload, limit: maxReceiveMessageSize)
    }

    func trailingMetadata() async -> Metadata {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.outcome != nil { return true }
                state.endWaiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
        return state.withLock { $0.trailers }
    }
}
