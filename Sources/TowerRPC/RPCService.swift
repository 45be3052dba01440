/// A service: a set of method handlers, usually produced by generated code.
public protocol RPCService: Sendable {
    var methodHandlers: [RPCMethodHandler] { get }
}

/// Finds handlers by `:path`.
struct MethodRouter: Sendable {
    private let handlers: [String: RPCMethodHandler]
    let serviceNames: Set<String>

    init(services: [any RPCService]) {
        var handlers: [String: RPCMethodHandler] = [:]
        var names = Set<String>()
        for service in services {
            for handler in service.methodHandlers {
                handlers[handler.method.path] = handler
                names.insert(handler.method.service)
            }
        }
        self.handlers = handlers
        self.serviceNames = names
    }

    func handler(forPath path: String) -> RPCMethodHandler? { handlers[path] }

    /// UNIMPLEMENTED, naming what is missing (only names the client already sent).
    func unimplemented(path: String) -> RPCError {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 3, parts[0].isEmpty {
            if serviceNames.contains(String(parts[1])) {
                return RPCError(.unimplemented, "Method not found: \(path)")
            }
            return RPCError(.unimplemented, "Service not found: \(parts[1])")
        }
        return RPCError(.unimplemented, "Malformed method path: \(path)")
    }
}
