import Logging
import Synchronization

/// Calls services in the same process without sockets, with the same semantics as the HTTP/2
/// transport: deadlines, cancellation, metadata (filtered as on the wire), interceptors, errors.
public struct InProcessChannel: RPCChannel {
    private let router: MethodRouter
    private let interceptors: [any RPCServerInterceptor]
    private let logger: Logger
    private let maxMessageSize: Int

    public init(
        services: [any RPCService], interceptors: [any RPCServerInterceptor] = [],
        logger: Logger = Logger(label: "ctower.rpc.in-process"), maxMessageSize: Int = 4 * 1024 * 1024
    ) {
        self.router = MethodRouter(services: services)
        self.interceptors = interceptors
        self.logger = logger
        self.maxMessageSize = maxMessageSize
    }

    public func makeCall(_ method: MethodDescriptor, options: CallOptions) async throws(RPCError) -> ClientCall {
        let response = ClientResponseState(maxReceiveMessageSize: options.maxReceiveMessageSize)
        guard let handler = router.handler(forPath: method.path) else {
            response.end(error: router.unimplemented(path: method.path), trailers: [:])
            return ClientCall(
                method: method, transport: EndedTransport(), response: response, maxSendMessageSize: options.maxSendMessageSize)
        }
        let deadline = options.timeout.map { ContinuousClock.now + $0 }
        let context = ServerContext(
            method: handler.method, requestMetadata: options.metadata.asReceivedOverTheWire, deadline: deadline,
            peer: "in-process", acceptedCompression: [], connectionID: 0, streamID: InProcessIDs.next(), logger: logger)
        let requests = MessageQueue()
        let sink = InProcessServerSink(response: response, context: context)
        let call = ServerCall(
            requests: requests, sink: sink, context: context, requestCompression: nil,
            maxReceiveMessageSize: maxMessageSize, maxSendMessageSize: maxMessageSize, requestIsSingle: false)
        let transport = InProcessClientTransport(requests: requests, context: context, response: response)
        let interceptors = self.interceptors
        let task = Task { await ServerCallRunner.run(handler, call: call, interceptors: interceptors) }
        transport.attach(task)
        if let timeout = options.timeout {
            Task {
                try? await Task.sleep(for: timeout)
                let error = RPCError(.deadlineExceeded, "The deadline was exceeded.")
                if response.end(error: error, trailers: [:]) {
                    context.markCancelled(deadlineExceeded: true)
                    task.cancel()
                    requests.fail(error)
                }
            }
        }
        return ClientCall(method: method, transport: transport, response: response, maxSendMessageSize: options.maxSendMessageSize)
    }
}

private enum InProcessIDs {
    static let counter = Atomic<Int32>(1)
    static func next() -> Int32 { counter.add(1, ordering: .relaxed).oldValue }
}

extension Metadata {
    /// What a server would see after the entries crossed HTTP/2 (reserved and invalid keys dropped).
    var asReceivedOverTheWire: Metadata {
        var result = Metadata()
        forEachWireHeader { result.addWireHeader(name: $0, value: $1) }
        return result
    }
}

private struct EndedTransport: ClientCallTransport {
    func send(_ message: [UInt8], compress: Bool, endStream: Bool) async throws(RPCError) {}
    func closeSending() {}
    func cancel() {}
}

private final class InProcessClientTransport: ClientCallTransport {
    let requests: MessageQueue
    let context: ServerContext
    let response: ClientResponseState
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(requests: MessageQueue, context: ServerContext, response: ClientResponseState) {
        self.requests = requests
        self.context = context
        self.response = response
    }

    func attach(_ task: Task<Void, Never>) { self.task.withLock { $0 = task } }

    func send(_ message: [UInt8], compress: Bool, endStream: Bool) async throws(RPCError) {
        requests.push(FramedMessage(compressed: false, payload: message))
        if endStream { requests.finish() }
    }

    func closeSending() { requests.finish() }

    func cancel() {
        context.markCancelled()
        task.withLock { $0 }?.cancel()
        requests.fail(RPCError(.cancelled, "The client cancelled the call."))
    }
}

private final class InProcessServerSink: ServerResponseSink {
    let response: ClientResponseState
    let context: ServerContext
    private let headersSent = Mutex(false)

    init(response: ClientResponseState, context: ServerContext) {
        self.response = response
        self.context = context
    }

    private func sendHeadersIfNeeded() {
        let first = headersSent.withLock { sent -> Bool in
            defer { sent = true }
            return !sent
        }
        if first { response.receiveHeaders(context.initialMetadata.asReceivedOverTheWire, compression: nil) }
    }

    func write(_ message: [UInt8], compress: Bool) async throws(RPCError) {
        guard !response.isFinished else { throw RPCError(.cancelled, "The call is already over.") }
        sendHeadersIfNeeded()
        response.receiveMessage(FramedMessage(compressed: false, payload: message))
    }

    func finish(finalMessage: [UInt8]?, error: RPCError?) {
        var trailers = context.trailingMetadata
        if let finalMessage, error == nil {
            sendHeadersIfNeeded()
            response.receiveMessage(FramedMessage(compressed: false, payload: finalMessage))
        }
        if let error { trailers.add(contentsOf: error.metadata) }
        trailers = trailers.asReceivedOverTheWire
        // Only what the wire would carry reaches the client: never the cause.
        let clientError = error.map {
            RPCError(code: $0.code, message: $0.message, metadata: trailers, statusDetails: $0.statusDetails)
        }
        response.end(error: clientError, trailers: trailers)
    }
}
