/// Emits, per service: method descriptors, the server protocol a service implements, the handler
/// table TowerRPC serves, and a typed client.
struct ServiceEmitter {
    let registry: TypeRegistry
    let prefix: String

    func emit(_ s: ServiceDef) -> String {
        let ns = prefix + s.name
        var out = Naming.docComment(s.comment, indent: "")
        out += "public enum \(ns) {\n"
        out += "    public static let serviceName = \"\(s.fullName)\"\n\n"
        out += "    /// The descriptor of each method, as TowerRPC routes and clients address them.\n"
        out += "    public enum Method {\n"
        for m in s.methods {
            out += Naming.docComment(m.comment, indent: "        ")
            out +=
                "        public static let \(Naming.escaped(name(m))) = MethodDescriptor(service: \"\(s.fullName)\", method: \"\(m.name)\", kind: .\(kind(m)))\n"
        }
        out += "        public static let all: [MethodDescriptor] = [\(s.methods.map { name($0) }.joined(separator: ", "))]\n"
        out += "    }\n\n"

        out += Naming.docComment(s.comment.isEmpty ? "What a server implements to serve \(s.fullName)." : s.comment, indent: "    ")
        out += "    public protocol ServiceProtocol: RPCService {\n"
        for m in s.methods {
            out += Naming.docComment(m.comment, indent: "        ")
            out += "        func \(signature(m))\n"
        }
        out += "    }\n\n"

        out += "    /// A typed client of \(s.fullName) over any channel (HTTP/2, in-process).\n"
        out += "    public struct Client: Sendable {\n"
        out += "        public let channel: any RPCChannel\n\n"
        out += "        public init(channel: any RPCChannel) { self.channel = channel }\n"
        for m in s.methods {
            let req = registry[m.inputType].swiftName
            let res = registry[m.outputType].swiftName
            let d = "Method.\(name(m))"
            out += "\n" + Naming.docComment(m.comment, indent: "        ")
            switch (m.clientStreaming, m.serverStreaming) {
            case (false, false):
                out += "        public func \(name(m))(_ request: \(req), options: CallOptions = CallOptions()) async throws -> \(res) {\n"
                out += "            try await channel.unary(\(d), request, options: options)\n        }\n"
            case (false, true):
                out +=
                    "        public func \(name(m))<R: Sendable>(_ request: \(req), options: CallOptions = CallOptions(), _ handle: @Sendable (ClientResponseStream<\(res)>) async throws -> R) async throws -> R {\n"
                out += "            try await channel.serverStreaming(\(d), request, options: options, handle)\n        }\n"
            case (true, false):
                out +=
                    "        public func \(name(m))(options: CallOptions = CallOptions(), _ requests: @Sendable (ClientRequestWriter<\(req)>) async throws -> Void) async throws -> \(res) {\n"
                out += "            try await channel.clientStreaming(\(d), options: options, requests)\n        }\n"
            case (true, true):
                out +=
                    "        public func \(name(m))<R: Sendable>(options: CallOptions = CallOptions(), _ body: @Sendable (ClientRequestWriter<\(req)>, ClientResponseStream<\(res)>) async throws -> R) async throws -> R {\n"
                out += "            try await channel.bidiStreaming(\(d), options: options, body)\n        }\n"
            }
        }
        out += "    }\n}\n\n"

        out += "extension \(ns).ServiceProtocol {\n"
        out += "    public var methodHandlers: [RPCMethodHandler] {\n        [\n"
        for m in s.methods {
            let d = "\(ns).Method.\(name(m))"
            let call: String
            switch (m.clientStreaming, m.serverStreaming) {
            case (false, false): call = ".unary(\(d)) { try await self.\(name(m))(request: $0, context: $1) }"
            case (false, true): call = ".serverStreaming(\(d)) { try await self.\(name(m))(request: $0, responses: $1, context: $2) }"
            case (true, false): call = ".clientStreaming(\(d)) { try await self.\(name(m))(requests: $0, context: $1) }"
            case (true, true): call = ".bidiStreaming(\(d)) { try await self.\(name(m))(requests: $0, responses: $1, context: $2) }"
            }
            out += "            \(call),\n"
        }
        out += "        ]\n    }\n}\n"
        return out
    }

    func name(_ m: ServiceDef.Method) -> String { Naming.lowerCamel(m.name) }

    func kind(_ m: ServiceDef.Method) -> String {
        switch (m.clientStreaming, m.serverStreaming) {
        case (false, false): "unary"
        case (false, true): "serverStreaming"
        case (true, false): "clientStreaming"
        case (true, true): "bidiStreaming"
        }
    }

    func signature(_ m: ServiceDef.Method) -> String {
        let req = registry[m.inputType].swiftName
        let res = registry[m.outputType].swiftName
        let n = Naming.escaped(name(m))
        switch (m.clientStreaming, m.serverStreaming) {
        case (false, false): return "\(n)(request: \(req), context: ServerContext) async throws -> \(res)"
        case (false, true): return "\(n)(request: \(req), responses: ResponseStreamWriter<\(res)>, context: ServerContext) async throws"
        case (true, false): return "\(n)(requests: RequestStream<\(req)>, context: ServerContext) async throws -> \(res)"
        case (true, true):
            return "\(n)(requests: RequestStream<\(req)>, responses: ResponseStreamWriter<\(res)>, context: ServerContext) async throws"
        }
    }
}
