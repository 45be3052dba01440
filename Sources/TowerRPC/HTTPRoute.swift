/// A plain HTTP/1.1 request served on the gRPC port (webhooks, probes).
public struct HTTPRequest: Sendable {
    /// Upper-case as sent, e.g. "POST".
    public var method: String
    /// The path as sent, without the query (not percent-decoded).
    public var path: String
    /// What followed `?` in the target, without the `?` ("" when absent).
    public var query: String
    /// Header fields in arrival order; names lower-cased.
    public var headers: [(name: String, value: String)]
    /// The complete body (Content-Length or de-chunked), at most `Limits.maxHTTPRequestBodySize`.
    public var body: [UInt8]

    public init(method: String, path: String, query: String = "", headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The first value of a header (case-insensitive name).
    public func header(_ name: String) -> String? {
        let name = name.lowercased()
        return headers.first { $0.name == name }?.value
    }
}

/// The answer to an `HTTPRequest`. `Content-Length` and `Connection` are set by the server.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A `text/plain; charset=utf-8` response.
    public static func text(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("content-type", "text/plain; charset=utf-8")], body: Array(text.utf8))
    }
}

/// One entry of `RPCServer.Configuration.httpRoutes`: requests whose method matches and whose
/// path starts with `pathPrefix` go to `handler`. Routes are tried in order; the first match wins.
public struct HTTPRoute: Sendable {
    /// nil matches any method.
    public var method: String?
    public var pathPrefix: String
    /// A thrown error becomes a bare 500 (the error is logged by type only, never sent).
    public var handler: @Sendable (HTTPRequest) async throws -> HTTPResponse

    public init(method: String?, pathPrefix: String, handler: @escaping @Sendable (HTTPRequest) async throws -> HTTPResponse) {
        self.method = method
        self.pathPrefix = pathPrefix
        self.handler = handler
    }
}

/// Chooses what answers an HTTP/1.1 request: the built-in `/healthz`, then the configured routes.
struct HTTPRouter: Sendable {
    enum Decision {
        case respond(HTTPResponse)
        case route(HTTPRoute)
    }

    let routes: [HTTPRoute]

    /// `/healthz` answers 200 "ok" while serving and 503 "draining" once shutdown began, so load
    /// balancers stop sending before connections close. Unknown paths are 404; a known path with
    /// another method is 405.
    func decide(method: String, path: String, draining: Bool) -> Decision {
        if path == "/healthz" {
            guard method == "GET" || method == "HEAD" else { return .respond(Self.methodNotAllowed("GET, HEAD")) }
            return .respond(draining ? .text(503, "draining\n") : .text(200, "ok\n"))
        }
        var allowed: [String] = []
        for route in routes where path.hasPrefix(route.pathPrefix) {
            guard let routeMethod = route.method else { return .route(route) }
            if routeMethod == method { return .route(route) }
            allowed.append(routeMethod)
        }
        if !allowed.isEmpty { return .respond(Self.methodNotAllowed(allowed.joined(separator: ", "))) }
        return .respond(.text(404, "not found\n"))
    }

    static func methodNotAllowed(_ allow: String) -> HTTPResponse {
        var response = HTTPResponse.text(405, "method not allowed\n")
        response.headers.append(("allow", allow))
        return response
    }
}
