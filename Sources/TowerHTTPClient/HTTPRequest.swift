/// An outbound HTTP request.
public struct HTTPRequest: Sendable, Hashable {
    /// The request method.
    public struct Method: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name.uppercased() }

        public static let get = Method("GET")
        public static let post = Method("POST")
        public static let put = Method("PUT")
        public static let delete = Method("DELETE")
        public static let head = Method("HEAD")

        public var description: String { name }
    }

    public var method: Method
    /// Absolute `http://` or `https://` URL, query included.
    public var url: String
    /// Header fields in order. `Content-Type` is set from `body` when it is form data.
    public var headers: [(name: String, value: String)]
    /// The request body; empty for none.
    public var body: [UInt8]
    /// Gives up (error `.timedOut`) after this long in total, connecting included.
    public var timeout: Duration
    /// Gives up connecting (error `.connectFailed`, never sent) after this long.
    public var connectTimeout: Duration
    /// HTTP Basic credentials, sent with every request (never logged).
    public var basicAuth: BasicAuth?

    public init(
        method: Method, url: String, headers: [(name: String, value: String)] = [], body: [UInt8] = [],
        timeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(10), basicAuth: BasicAuth? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.basicAuth = basicAuth
    }

    /// A form-encoded POST-style request (`application/x-www-form-urlencoded`).
    public static func form(
        _ method: Method = .post, url: String, fields: [(String, String)], timeout: Duration = .seconds(30),
        connectTimeout: Duration = .seconds(10), basicAuth: BasicAuth? = nil
    ) -> HTTPRequest {
        HTTPRequest(
            method: method, url: url, headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: Array(FormEncoding.encode(fields).utf8), timeout: timeout, connectTimeout: connectTimeout, basicAuth: basicAuth)
    }

    public static func == (lhs: HTTPRequest, rhs: HTTPRequest) -> Bool {
        lhs.method == rhs.method && lhs.url == rhs.url && lhs.body == rhs.body && lhs.timeout == rhs.timeout
            && lhs.connectTimeout == rhs.connectTimeout && lhs.basicAuth == rhs.basicAuth
            && lhs.headers.count == rhs.headers.count
            && zip(lhs.headers, rhs.headers).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(method)
        hasher.combine(url)
        hasher.combine(body)
    }
}

/// HTTP Basic credentials. `description` hides the password.
public struct BasicAuth: Sendable, Hashable, CustomStringConvertible {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    public var description: String { "BasicAuth(\(username), <redacted>)" }
}

/// An HTTP response: status, header fields, body.
public struct HTTPResponse: Sendable, Hashable {
    public var status: Int
    /// Header fields of the final response (after any `100 Continue`), in order.
    public var headers: [HTTPHeader]
    public var body: [UInt8]

    public init(status: Int, headers: [HTTPHeader], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first header named `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// The body as UTF-8 text (invalid sequences repaired).
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// One header field.
public struct HTTPHeader: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
