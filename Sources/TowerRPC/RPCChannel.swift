import TowerProtoRuntime

/// Something that can carry calls: an HTTP/2 connection (`HTTP2ClientChannel`) or services in the
/// same process (`InProcessChannel`). Generated client stubs call the typed methods of the
/// extension below.
public protocol RPCChannel: Sendable {
    /// Starts a call. The request side is open until `closeSending()`.
    func makeCall(_ method: MethodDescriptor, options: CallOptions) async throws(RPCError) -> ClientCall
}

/// A unary response with its metadata.
public struct ClientUnaryResponse<Message: Sendable>: Sendable {
    public var message: Message
    public var initialMetadata: Metadata
    public var trailingMetadata: Metadata
}

extension RPCChannel {
    public func unary<Req: ProtoMessage, Res: ProtoMessage>(
        _ method: MethodDescriptor, _ request: Req, options: CallOptions = .default
    ) async throws -> Res {
        try await unaryResponse(method, request, options: options).message
    }

    public func unaryResponse<Req: ProtoMessage, Res: ProtoMessage>(
        _ method: MethodDescriptor, _ request: Req, options: CallOptions = .default
    ) async throws -> ClientUnaryResponse<Res> {
        let call = try await makeCall(method, options: options)
        return try await withCancellation(call) {
            try await call.send(request.protobufBytes(), endStream: true)
            return try await readSingleResponse(call, Res.self)
        }
    }

    public func serverStreaming<Req: ProtoMessage, Res: ProtoMessage, R: Sendable>(
        _ method: MethodDescriptor, _ request: Req, options: CallOptions = .default,
        _ handle: @Sendable (ClientResponseStream<Res>) async throws -> R
    ) async throws -> R {
        let call = try await makeCall(method, options: options)
        return try await withCancellation(call) {
            try await call.send(request.protobufBytes(), endStream: true)
            let result = try await handle(ClientResponseStream(call: call))
            if !call.isFinished { call.cancel() }
            return result
        }
    }

    public func clientStreaming<Req: ProtoMessage, Res: ProtoMessage>(
        _ method: MethodDescriptor, options: CallOptions = .default,
        _ requests: @Sendable (ClientRequestWriter<Req>) async throws -> Void
    ) async throws -> Res {
        let call = try await makeCall(method, options: options)
        return try await withCancellation(call) {
            do {
                try await requests(ClientRequestWriter(call: call))
            } catch {
                // The server may already have failed the call; its status explains more.
                if call.isFinished, let status = await finalError(call) { throw status }
                call.cancel()
                throw error
            }
            call.closeSending()
            return try await readSingleResponse(call, Res.self).message
        }
    }

    public func bidiStreaming<Req: ProtoMessage, Res: ProtoMessage, R: Sendable>(
        _ method: MethodDescriptor, options: CallOptions = .default,
        _ body: @Sendable (ClientRequestWriter<Req>, ClientResponseStream<Res>) async throws -> R
    ) async throws -> R {
        let call = try await makeCall(method, options: options)
        return try await withCancellation(call) {
            let result = try await body(ClientRequestWriter(call: call), ClientResponseStream(call: call))
            if !call.isFinished { call.cancel() }
            return result
        }
    }
}

private func withCancellation<R: Sendable>(_ call: ClientCall, _ body: () async throws -> R) async throws -> R {
    try await withTaskCancellationHandler {
        try await body()
    } onCancel: {
        call.cancel()
    }
}

private func finalError(_ call: ClientCall) async -> RPCError? {
    do {
        while try await call.nextMessage() != nil {}
        return nil
    } catch {
        return error
    }
}

private func readSingleResponse<Res: ProtoMessage>(_ call: ClientCall, _ type: Res.Type) async throws(RPCError) -> ClientUnaryResponse<Res>
{
    let initial = try await call.initialMetadata()
    guard let bytes = try await call.nextMessage() else {
        throw RPCError(.unimplemented, "The server ended the call with OK but without a response message.")
    }
    if try await call.nextMessage() != nil {
        call.cancel()
        throw RPCError(.unimplemented, "The server sent more than one response message to a unary-response call.")
    }
    let message = try decodeResponse(Res.self, bytes)
    return ClientUnaryResponse(message: message, initialMetadata: initial, trailingMetadata: await call.trailingMetadata())
}

func decodeResponse<Res: ProtoMessage>(_ type: Res.Type, _ bytes: [UInt8]) throws(RPCError) -> Res {
    do {
        return try bytes.withUnsafeBytes { raw throws(ProtoDecodingError) in try Res(protobufBytes: raw) }
    } catch {
        throw RPCError(code: .internal, message: "Failed to decode response message of type \(Res.protoMessageName).", cause: error)
    }
}

/// The response messages of a streaming call. Throws `RPCError` when the call fails.
public struct ClientResponseStream<Message: ProtoMessage>: AsyncSequence, Sendable {
    public typealias Element = Message
    public typealias Failure = RPCError
    let call: ClientCall

    /// The response headers' metadata (waits for them).
    public var initialMetadata: Metadata {
        get async throws(RPCError) { try await call.initialMetadata() }
    }

    /// The trailers (waits for the end of the call).
    public var trailingMetadata: Metadata {
        get async { await call.trailingMetadata() }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Element = Message
        public typealias Failure = RPCError
        let call: ClientCall

        public mutating func next() async throws(RPCError) -> Message? {
            guard let bytes = try await call.nextMessage() else { return nil }
            return try decodeResponse(Message.self, bytes)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(call: call) }
}

/// Sends the request messages of a client- or bidi-streaming call.
public struct ClientRequestWriter<Message: ProtoMessage>: Sendable {
    let call: ClientCall

    /// Sends one message; suspends under flow control.
    public func write(_ message: Message) async throws {
        try await call.send(message.protobufBytes())
    }

    /// Sends one message, choosing whether it is compressed (when the call options set a compression).
    public func write(_ message: Message, compress: Bool) async throws {
        try await call.send(message.protobufBytes(), compress: compress)
    }

    /// Half-closes the request side: the server sees the end of its request stream.
    public func finish() {
        call.closeSending()
    }
}
