import TowerProtoRuntime

/// One method of a service, bound to its implementation. Generated code builds these with the four
/// static factories.
public struct RPCMethodHandler: Sendable {
    public let method: MethodDescriptor
    /// Returns the serialized final response for unary-response methods, nil for streaming ones.
    let invoke: @Sendable (ServerCall) async throws -> [UInt8]?

    init(method: MethodDescriptor, invoke: @escaping @Sendable (ServerCall) async throws -> [UInt8]?) {
        self.method = method
        self.invoke = invoke
    }

    public static func unary<Req: ProtoMessage, Res: ProtoMessage>(
        _ method: MethodDescriptor, _ body: @escaping @Sendable (Req, ServerContext) async throws -> Res
    ) -> RPCMethodHandler {
        RPCMethodHandler(method: method) { call in
            let request = try await call.singleRequest(Req.self)
            let response = try await body(request, call.context)
            return try call.encode(response)
        }
    }

    public static func serverStreaming<Req: ProtoMessage, Res: ProtoMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (Req, ResponseStreamWriter<Res>, ServerContext) async throws -> Void
    ) -> RPCMethodHandler {
        RPCMethodHandler(method: method) { call in
            let request = try await call.singleRequest(Req.self)
            try await body(request, ResponseStreamWriter(call: call), call.context)
            return nil
        }
    }

    public static func clientStreaming<Req: ProtoMessage, Res: ProtoMessage>(
        _ method: MethodDescriptor, _ body: @escaping @Sendable (RequestStream<Req>, ServerContext) async throws -> Res
    ) -> RPCMethodHandler {
        RPCMethodHandler(method: method) { call in
            let response = try await body(RequestStream(call: call), call.context)
            return try call.encode(response)
        }
    }

    public static func bidiStreaming<Req: ProtoMessage, Res: ProtoMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (RequestStream<Req>, ResponseStreamWriter<Res>, ServerContext) async throws -> Void
    ) -> RPCMethodHandler {
        RPCMethodHandler(method: method) { call in
            try await body(RequestStream(call: call), ResponseStreamWriter(call: call), call.context)
            return nil
        }
    }
}

/// The request messages of a client- or bidi-streaming call. Ends when the client half-closes;
/// throws `RPCError` when the call fails (cancelled, undecodable message, oversize).
public struct RequestStream<Message: Sendable>: AsyncSequence, Sendable {
    public typealias Element = Message
    public typealias Failure = RPCError

    private let nextMessage: @Sendable () async throws(RPCError) -> Message?

    init(call: ServerCall) where Message: ProtoMessage {
        nextMessage = { () async throws(RPCError) -> Message? in
            guard let framed = try await call.requests.next() else { return nil }
            return try call.decode(Message.self, framed)
        }
    }

    /// A stream over values produced elsewhere (tests, adapters).
    public init(_ next: @escaping @Sendable () async throws(RPCError) -> Message?) {
        nextMessage = next
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Element = Message
        public typealias Failure = RPCError
        let nextMessage: @Sendable () async throws(RPCError) -> Message?
        var finished = false

        public mutating func next() async throws(RPCError) -> Message? {
            guard !finished else { return nil }
            let message = try await nextMessage()
            if message == nil { finished = true }
            return message
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(nextMessage: nextMessage) }
}

/// Sends the response messages of a server- or bidi-streaming call.
public struct ResponseStreamWriter<Message: ProtoMessage>: Sendable {
    let call: ServerCall

    /// Sends one message; suspends while the client is not reading (HTTP/2 flow control). Throws
    /// when the call is over (cancelled, deadline, client gone).
    public func write(_ message: Message) async throws {
        try await call.sink.write(call.encode(message), compress: true)
    }

    /// Sends one message, choosing whether it is compressed (when the call has a response
    /// compression negotiated; otherwise messages are never compressed).
    public func write(_ message: Message, compress: Bool) async throws {
        try await call.sink.write(call.encode(message), compress: compress)
    }
}
