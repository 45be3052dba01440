import InteropProto
import TowerRPC

/// `grpc.testing.TestService` as grpc/doc/interop-test-descriptions.md describes the server side,
/// so stock gRPC interop clients can check our wire behaviour.
struct TestServiceImpl: Grpc_Testing_TestService.ServiceProtocol {
    static let echoInitialKey = "x-grpc-test-echo-initial"
    static let echoTrailingKey = "x-grpc-test-echo-trailing-bin"

    func emptyCall(request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
        echoMetadata(context)
        return Grpc_Testing_Empty()
    }

    func unaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse {
        echoMetadata(context)
        try checkCompression(expected: request.expectCompressed, context: context)
        if let status = request.responseStatus, status.code != 0 {
            throw RPCError(RPCError.Code(rawValue: Int(status.code)), status.message)
        }
        if request.responseCompressed?.value == true { context.responseCompression = .gzip }
        var response = Grpc_Testing_SimpleResponse()
        response.payload = try payload(size: request.responseSize)
        return response
    }

    func cacheableUnaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse {
        try await unaryCall(request: request, context: context)
    }

    func streamingOutputCall(
        request: Grpc_Testing_StreamingOutputCallRequest, responses: ResponseStreamWriter<Grpc_Testing_StreamingOutputCallResponse>,
        context: ServerContext
    ) async throws {
        echoMetadata(context)
        try await respond(to: request, responses: responses, context: context)
    }

    func streamingInputCall(requests: RequestStream<Grpc_Testing_StreamingInputCallRequest>, context: ServerContext) async throws
        -> Grpc_Testing_StreamingInputCallResponse
    {
        echoMetadata(context)
        var total = 0
        for try await request in requests {
            try checkCompression(expected: request.expectCompressed, context: context)
            total += request.payload?.body.count ?? 0
        }
        var response = Grpc_Testing_StreamingInputCallResponse()
        response.aggregatedPayloadSize = Int32(total)
        return response
    }

    func fullDuplexCall(
        requests: RequestStream<Grpc_Testing_StreamingOutputCallRequest>,
        responses: ResponseStreamWriter<Grpc_Testing_StreamingOutputCallResponse>,
        context: ServerContext
    ) async throws {
        echoMetadata(context)
        for try await request in requests {
            try await respond(to: request, responses: responses, context: context)
        }
    }

    func halfDuplexCall(
        requests: RequestStream<Grpc_Testing_StreamingOutputCallRequest>,
        responses: ResponseStreamWriter<Grpc_Testing_StreamingOutputCallResponse>,
        context: ServerContext
    ) async throws {
        echoMetadata(context)
        var all: [Grpc_Testing_StreamingOutputCallRequest] = []
        for try await request in requests { all.append(request) }
        for request in all { try await respond(to: request, responses: responses, context: context) }
    }

    func unimplementedCall(request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
        throw RPCError(.unimplemented, "grpc.testing.TestService/UnimplementedCall is deliberately not implemented")
    }

    // MARK: helpers

    private func respond(
        to request: Grpc_Testing_StreamingOutputCallRequest, responses: ResponseStreamWriter<Grpc_Testing_StreamingOutputCallResponse>,
        context: ServerContext
    ) async throws {
        if let status = request.responseStatus, status.code != 0 {
            throw RPCError(RPCError.Code(rawValue: Int(status.code)), status.message)
        }
        for parameters in request.responseParameters {
            if parameters.intervalUs > 0 { try await Task.sleep(for: .microseconds(parameters.intervalUs)) }
            var response = Grpc_Testing_StreamingOutputCallResponse()
            response.payload = try payload(size: parameters.size)
            try await responses.write(response, compress: parameters.compressed?.value == true)
        }
    }

    private func payload(size: Int32) throws -> Grpc_Testing_Payload {
        guard size >= 0 else { throw RPCError(.invalidArgument, "response_size: must not be negative") }
        var payload = Grpc_Testing_Payload()
        payload.body = [UInt8](repeating: 0, count: Int(size))
        return payload
    }

    /// The server side of client_compressed_*: a request that claims it should arrive compressed
    /// but did not is refused, which is how the client probes for compression support.
    private func checkCompression(expected: Grpc_Testing_BoolValue?, context: ServerContext) throws {
        if expected?.value == true, !context.lastRequestWasCompressed {
            throw RPCError(.invalidArgument, "expect_compressed is true but the request message was not compressed")
        }
    }

    private func echoMetadata(_ context: ServerContext) {
        if let initial = context.requestMetadata.first(Self.echoInitialKey) {
            context.addInitialMetadata(Self.echoInitialKey, initial)
        }
        if let trailing = context.requestMetadata.first(Self.echoTrailingKey) {
            context.addTrailingMetadata(Self.echoTrailingKey, trailing)
        }
    }
}
