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
