import InteropProto
import Testing
import TowerProto
import TowerRPC
import TowerStandardServices

/// A service that rejects every request with field violations, to see them cross the wire.
struct RejectingEcho: Ctower_Testing_V1_Echo.ServiceProtocol {
    func say(request: Ctower_Testing_V1_EchoRequest, context: ServerContext) async throws -> Ctower_Testing_V1_EchoResponse {
        throw RPCError.invalidArgument([
            FieldViolation(field: "text", description: "must not be empty; send the words to echo"),
            FieldViolation(field: "lead.phones[1].number", description: "555-0199 is a fictional number; use a real E.164 number"),
        ])
    }
}

@Suite("Rich errors: google.rpc.BadRequest in grpc-status-details-bin")
struct RichErrorTests {
    @Test func violationsRoundTripThroughStatusDetails() {
        let error = RPCError.invalidArgument([FieldViolation(field: "a.b", description: "fix it")])
        #expect(error.code == .invalidArgument)
        #expect(error.message == "a.b: fix it")
        #expect(error.fieldViolations == [FieldViolation(field: "a.b", description: "fix it")])
    }

    @Test func violationsCrossHTTP2() async throws {
        let server = RPCServer(configuration: .init(host: "127.0.0.1", port: 0), services: [RejectingEcho()])
        let address = try await server.start()
        let channel = HTTP2ClientChannel(host: "127.0.0.1", port: address.port!)
        do {
            _ = try await Ctower_Testing_V1_Echo.Client(channel: channel).say(Ctower_Testing_V1_EchoRequest())
            Issue.record("expected INVALID_ARGUMENT")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(error.fieldViolations.map(\.field) == ["text", "lead.phones[1].number"])
            #expect(error.message.contains("lead.phones[1].number"))
        }
        await channel.close()
        await server.shutdown(gracePeriod: .seconds(1))
    }
}

@Suite("Access log and metrics interceptors")
struct ObservabilityTests {
    @Test func metricsCountCallsByMethodAndStatus() async throws {
        let metrics = RPCMetrics()
        let channel = InProcessChannel(
            services: [RejectingEcho()], interceptors: [AccessLogInterceptor(level: .debug), metrics.interceptor])
        let client = Ctower_Testing_V1_Echo.Client(channel: channel)
        for _ in 0..<3 { _ = try? await client.say(Ctower_Testing_V1_EchoRequest()) }
        let text = metrics.prometheusText()
        #expect(text.contains("ctower_rpc_requests_total{method=\"/ctower.testing.v1.Echo/Say\",code=\"INVALID_ARGUMENT\"} 3"))
        #expect(text.contains("ctower_rpc_duration_seconds_count{method=\"/ctower.testing.v1.Echo/Say\",code=\"INVALID_ARGUMENT\"} 3"))
        #expect(text.contains("le=\"+Inf\"} 3"))
    }

    @Test func requestIDIsReturnedAsInitialMetadata() async throws {
        let server = RPCServer(
            configuration: .init(host: "127.0.0.1", port: 0, interceptors: [AccessLogInterceptor()]), services: [HealthService()])
        let address = try await server.start()
        let channel = HTTP2ClientChannel(host: "127.0.0.1", port: address.port!)
        let response: ClientUnaryResponse<Grpc_Health_V1_HealthCheckResponse> = try await channel.unaryResponse(
            Grpc_Health_V1_Health.Method.check, Grpc_Health_V1_HealthCheckRequest(),
            options: CallOptions(metadata: ["x-request-id": "support-ticket-42"]))
        #expect(response.initialMetadata.firstString("x-request-id") == "support-ticket-42")
        await channel.close()
        await server.shutdown(gracePeriod: .seconds(1))
    }
}
