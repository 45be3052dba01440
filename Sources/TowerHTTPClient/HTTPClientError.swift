/// Why an HTTP exchange failed, and — what matters for non-idempotent requests — whether the
/// request may have reached the server.
public struct HTTPClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong; extensible, so switch with a default.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }

        /// The host name did not resolve.
        public static let resolveFailed = Code("resolve failed")
        /// No TCP connection (refused, unreachable, connect timeout).
        public static let connectFailed = Code("connect failed")
        /// The TLS handshake failed (certificate, protocol).
        public static let tlsFailed = Code("tls failed")
        /// The overall timeout passed.
        public static let timedOut = Code("timed out")
        /// The connection broke, or the server closed it without (a complete) response.
        public static let connectionLost = Code("connection lost")
        /// The caller cancelled.
        public static let cancelled = Code("cancelled")
        /// The request could not be built (bad URL, unsupported scheme).
        public static let invalidRequest = Code("invalid request")
        /// The response was larger than the client accepts.
        public static let responseTooLarge = Code("response too large")
        /// Anything else libcurl reported.
        public static let other = Code("other")

        public var description: String { name }
    }

    /// Whether the server may have received the request.
    public enum Delivery: Sendable, Hashable {
        /// Certainly not: it failed before any request byte was written. Retrying is safe.
        case notSent
        /// The request (or part of it) went out and no complete response came back: the server
        /// may or may not have acted on it.
        case maybeSent
    }

    public var code: Code
    public var delivery: Delivery
    /// What libcurl said, for logs. Never contains credentials.
    public var message: String

    public init(_ code: Code, delivery: Delivery, _ message: String) {
        self.code = code
        self.delivery = delivery
        self.message = message
    }

    /// True when a retry cannot cause a duplicate.
    public var isSafeToRetry: Bool { delivery == .notSent }

    public var description: String {
        "HTTP \(code) (\(delivery == .notSent ? "not sent" : "may have been sent")): \(message)"
    }
}
