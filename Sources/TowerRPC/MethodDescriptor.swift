/// The four RPC shapes.
public enum RPCKind: Sendable, Hashable {
    case unary, serverStreaming, clientStreaming, bidiStreaming

    var isClientStreaming: Bool { self == .clientStreaming || self == .bidiStreaming }
}

/// Names one method of one service.
public struct MethodDescriptor: Sendable, Hashable, CustomStringConvertible {
    /// Fully qualified service name, e.g. `grpc.health.v1.Health`.
    public let service: String
    /// Method name, e.g. `Check`.
    public let method: String
    public let kind: RPCKind
    /// The HTTP/2 `:path`, e.g. `/grpc.health.v1.Health/Check`.
    public let path: String

    public init(service: String, method: String, kind: RPCKind) {
        self.service = service
        self.method = method
        self.kind = kind
        self.path = "/\(service)/\(method)"
    }

    public var description: String { path }
}
