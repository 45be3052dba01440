import InteropProto
import TowerRPC

/// `ctower.testing.v1.Echo`: the unary method Benchmarks/rpc measures.
struct EchoServiceImpl: Ctower_Testing_V1_Echo.ServiceProtocol {
    func say(request: Ctower_Testing_V1_EchoRequest, context: ServerContext) async throws -> Ctower_Testing_V1_EchoResponse {
        var response = Ctower_Testing_V1_EchoResponse()
        response.text = request.text
        return response
    }
}
