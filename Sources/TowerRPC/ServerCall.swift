import Logging
import NIOCore
import TowerProtoRuntime

/// Where a handler's responses go: the HTTP/2 stream or an in-process client.
protocol ServerResponseSink: Sendable {
    /// A streaming response message (already serialized, not framed). Suspends under backpressure.
    func write(_ message: [UInt8], compress: Bool) async throws(RPCError)
    /// Ends the call. `finalMessage` is the single response of a unary or client-streaming call.
    func finish(finalMessage: [UInt8]?, error: RPCError?)
}

/// Where a handler's request messages come from.
protocol ServerRequestSource: Sendable {
    func next() async throws(RPCError) -> FramedMessage?
}

extension MessageQueue: ServerRequestSource {}

/// A request that arrived whole before the handler started (unary and server-streaming calls).
struct SingleRequestSource: ServerRequestSource {
    let message: FramedMessage
    func next() async throws(RPCError) -> FramedMessage? { message }
}

/// Everything a running handler needs, independent of the transport.
struct ServerCall: Sendable {
    let requests: any ServerRequestSource
    let sink: any ServerResponseSink
    let context: ServerContext
    let requestCompression: CompressionAlgorithm?
    let maxReceiveMessageSize: Int
    let maxSendMessageSize: Int
    /// True when `requests` yields exactly one message and then must not be asked again.
    let requestIsSingle: Bool

    func decode<Message: ProtoMessage>(_ type: Message.Type, _ framed: FramedMessage) throws(RPCError) -> Message {
        context.noteRequestCompressed(framed.compressed)
        var payload = framed.payload
        if framed.compressed {
            guard let algorithm = requestCompression, algorithm != .identity else {
                throw RPCError(.internal, "Received a compressed message but the request has no grpc-encoding.")
            }
            payload = try algorithm.decompress(payload, limit: maxReceiveMessageSize)
        }
        do {
            return try payload.withUnsafeBytes { raw throws(ProtoDecodingError) in try Message(protobufBytes: raw) }
        } catch {
            throw RPCError(code: .internal, message: "Failed to decode request message of type \(Message.protoMessageName).", cause: error)
        }
    }

    func encode<Message: ProtoMessage>(_ message: Message) throws(RPCError) -> [UInt8] {
        let bytes = message.protobufBytes()
        if bytes.count > maxSendMessageSize {
            throw RPCError(
                .resourceExhausted, "Response message of \(bytes.count) bytes is larger than the limit of \(maxSendMessageSize) bytes.")
        }
        return bytes
    }

    func singleRequest<Message: ProtoMessage>(_ type: Message.Type) async throws(RPCError) -> Message {
        guard let first = try await requests.next() else {
            throw RPCError(.internal, "The client half-closed without sending a request message.")
        }
        if !requestIsSingle, try await requests.next() != nil {
            throw RPCError(.internal, "The client sent more than one request message to a unary-request method.")
        }
        return try decode(Message.self, first)
    }
}

/// Runs one call through the interceptors and the handler and reports the outcome to the sink.
enum ServerCallRunner {
    static func run(_ handler: RPCMethodHandler, call: ServerCall, interceptors: [any RPCServerInterceptor]) async {
        do {
            var finalMessage: [UInt8]?
            if interceptors.isEmpty {
                finalMessage = try await handler.invoke(call)
            } else {
                try await intercept(interceptors[...], context: call.context) {
                    finalMessage = try await handler.invoke(call)
                }
            }
            call.sink.finish(finalMessage: finalMessage, error: nil)
        } catch {
            var rpcError: RPCError
            if call.context.deadlineExceeded {
                rpcError = RPCError(.deadlineExceeded, "The deadline was exceeded.")
            } else {
                rpcError = RPCError.fromHandler(error)
                if rpcError.code == .unknown || rpcError.code == .internal, let cause = rpcError.cause {
                    // The error's type only: its text may hold tenant data or secrets.
                    let logger = call.context.logger
                    logger.warning("RPC failed", metadata: ["rpc.code": "\(rpcError.code)", "error.type": "\(type(of: cause))"])
                }
            }
            call.sink.finish(finalMessage: nil, error: rpcError)
        }
    }

    private static func intercept(
        _ interceptors: ArraySlice<any RPCServerInterceptor>, context: ServerContext, _ body: () async throws -> Void
    ) async throws {
        guard let first = interceptors.first else { return try await body() }
        try await first.intercept(context) {
            try await intercept(interceptors.dropFirst(), context: context, body)
        }
    }
}
