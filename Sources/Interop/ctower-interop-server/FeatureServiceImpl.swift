import InteropProto
import TowerProtoRuntime
import TowerRPC

/// Lets the interop tests check our generated codec against Google's protobuf runtime: every
/// message crosses protobuf-c and the generated Swift conversions in both directions.
struct FeatureServiceImpl: Ctower_Testing_V1_FeatureService.ServiceProtocol {
    func echo(request: Ctower_Testing_V1_Everything, context: ServerContext) async throws -> Ctower_Testing_V1_Everything {
        request
    }

    /// Streams the tree's children back.
    func expand(request: Ctower_Testing_V1_Tree, responses: ResponseStreamWriter<Ctower_Testing_V1_Tree>, context: ServerContext)
        async throws
    {
        for child in request.children { try await responses.write(child) }
    }

    /// Joins the names it receives with commas.
    func collect(requests: RequestStream<Ctower_Testing_V1_Tree>, context: ServerContext) async throws -> Ctower_Testing_V1_Tree {
        var names: [String] = []
        for try await tree in requests { names.append(tree.name) }
        var result = Ctower_Testing_V1_Tree()
        result.name = names.joined(separator: ",")
        return result
    }

    /// JSON both ways: a request whose `f_string` holds a JSON object is decoded from it and sent
    /// back as binary; any other request is answered with its own JSON encoding in `f_string`.
    func converse(
        requests: RequestStream<Ctower_Testing_V1_Everything>, responses: ResponseStreamWriter<Ctower_Testing_V1_Everything>,
        context: ServerContext
    ) async throws {
        for try await request in requests {
            if request.fString.hasPrefix("{") {
                do {
                    try await responses.write(try Ctower_Testing_V1_Everything(jsonString: request.fString))
                } catch let error as ProtoDecodingError {
                    throw RPCError(.invalidArgument, "f_string: \(error.message)")
                }
            } else {
                var response = Ctower_Testing_V1_Everything()
                response.fString = request.jsonString()
                try await responses.write(response)
            }
        }
    }
}
