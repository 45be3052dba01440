import InteropProto
import Testing
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStandardServices

@Suite("Server reflection v1 and v1alpha")
struct ReflectionServiceTests {
    let reflection = ReflectionService(
        files: TowerProtoFiles.all + InteropProtoFiles.all,
        serviceNames: ["grpc.testing.TestService", "grpc.health.v1.Health"] + ReflectionService.serviceNames)

    func ask(_ requests: [Grpc_Reflection_V1_ServerReflectionRequest]) async throws -> [Grpc_Reflection_V1_ServerReflectionResponse] {
        let client = Grpc_Reflection_V1_ServerReflection.Client(channel: InProcessChannel(services: [reflection.v1]))
        return try await client.serverReflectionInfo { writer, responses in
            for r in requests { try await writer.write(r) }
            writer.finish()
            var out: [Grpc_Reflection_V1_ServerReflectionResponse] = []
            for try await response in responses { out.append(response) }
            return out
        }
    }

    @Test func listsServedServices() async throws {
        var r = Grpc_Reflection_V1_ServerReflectionRequest()
        r.messageRequest = .listServices("")
        let responses = try await ask([r])
        guard case .listServicesResponse(let list) = responses.first?.messageResponse else {
            Issue.record("expected a service list")
            return
        }
        #expect(list.service.map(\.name).contains("grpc.testing.TestService"))
        #expect(list.service.map(\.name).contains("grpc.reflection.v1alpha.ServerReflection"))
    }

    @Test func fileContainingSymbolIncludesDependencies() async throws {
        var bySymbol = Grpc_Reflection_V1_ServerReflectionRequest()
        bySymbol.messageRequest = .fileContainingSymbol("grpc.testing.TestService.UnaryCall")
        var byName = Grpc_Reflection_V1_ServerReflectionRequest()
        byName.messageRequest = .fileByFilename("ctower/testing/v1/features.proto")
        var unknown = Grpc_Reflection_V1_ServerReflectionRequest()
        unknown.messageRequest = .fileContainingSymbol("no.Such")
        let responses = try await ask([bySymbol, byName, unknown])
        #expect(responses.count == 3)
        guard case .fileDescriptorResponse(let files) = responses[0].messageResponse else {
            Issue.record("expected files")
            return
        }
        // test.proto, then empty.proto and messages.proto.
        #expect(files.fileDescriptorProto.count == 3)
        guard case .fileDescriptorResponse(let features) = responses[1].messageResponse else {
            Issue.record("expected files")
            return
        }
        // features.proto imports five well-known-type files.
        #expect(features.fileDescriptorProto.count == 6)
        guard case .errorResponse(let error) = responses[2].messageResponse else {
            Issue.record("expected an error response")
            return
        }
        #expect(error.errorCode == Int32(RPCError.Code.notFound.rawValue))
        #expect(responses[2].originalRequest == unknown)
    }

    @Test func v1alphaAnswersToo() async throws {
        let client = Grpc_Reflection_V1alpha_ServerReflection.Client(channel: InProcessChannel(services: [reflection.v1alpha]))
        var request = Grpc_Reflection_V1alpha_ServerReflectionRequest()
        request.messageRequest = .fileContainingSymbol("grpc.health.v1.HealthCheckResponse.ServingStatus")
        let r = request
        let response = try await client.serverReflectionInfo { writer, responses in
            try await writer.write(r)
            writer.finish()
            var iterator = responses.makeAsyncIterator()
            return try await iterator.next()
        }
        guard case .fileDescriptorResponse(let files) = response?.messageResponse else {
            Issue.record("expected files")
            return
        }
        #expect(files.fileDescriptorProto.count == 1)
    }
}
