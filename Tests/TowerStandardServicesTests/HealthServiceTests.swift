import Testing
import TowerProto
import TowerRPC
import TowerStandardServices

@Suite("grpc.health.v1.Health")
struct HealthServiceTests {
    let health = HealthService(services: ["ctower.v1.LeadService"])
    var client: Grpc_Health_V1_Health.Client { .init(channel: InProcessChannel(services: [health])) }

    func request(_ service: String) -> Grpc_Health_V1_HealthCheckRequest {
        var r = Grpc_Health_V1_HealthCheckRequest()
        r.service = service
        return r
    }

    @Test func checkKnowsServerAndServices() async throws {
        #expect(try await client.check(request("")).status == .serving)
        #expect(try await client.check(request("ctower.v1.LeadService")).status == .serving)
        health.setStatus(.notServing, for: "ctower.v1.LeadService")
        #expect(try await client.check(request("ctower.v1.LeadService")).status == .notServing)
    }

    @Test func checkOfUnknownServiceIsNotFound() async throws {
        await #expect(throws: RPCError.self) { try await client.check(request("no.Such")) }
        do {
            _ = try await client.check(request("no.Such"))
        } catch let error as RPCError {
            #expect(error.code == .notFound)
            #expect(error.message.contains("no.Such"))
        }
    }

    @Test func listReportsEveryService() async throws {
        let list = try await client.list(Grpc_Health_V1_HealthListRequest())
        #expect(Set(list.statuses.keys) == ["", "ctower.v1.LeadService"])
    }

    @Test func watchStreamsChangesAndUnknownServices() async throws {
        let client = self.client
        let health = self.health
        let seen = try await client.watch(request("later.Service")) { stream in
            var statuses: [Grpc_Health_V1_HealthCheckResponse.ServingStatus] = []
            for try await response in stream {
                statuses.append(response.status)
                switch statuses.count {
                case 1: health.setStatus(.serving, for: "later.Service")
                case 2: health.setStatus(.notServing, for: "later.Service")
                default: return statuses
                }
            }
            return statuses
        }
        #expect(seen == [.serviceUnknown, .serving, .notServing])
    }
}
