/// The error every RPC fails with, on the server and the client.
///
/// Servers turn it into `grpc-status`, `grpc-message`, `grpc-status-details-bin` and trailing
/// metadata; clients get it back from every call that does not end with OK.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    /// A gRPC status code. A struct, not an enum, so codes this library does not know survive a
    /// round trip.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }

        public static let ok = Code(rawValue: 0)
        public static let cancelled = Code(rawValue: 1)
        public static let unknown = Code(rawValue: 2)
        public static let invalidArgument = Code(rawValue: 3)
        public static let deadlineExceeded = Code(rawValue: 4)
        public static let notFound = Code(rawValue: 5)
        public static let alreadyExists = Code(rawValue: 6)
        public static let permissionDenied = Code(rawValue: 7)
        public static let resourceExhausted = Code(rawValue: 8)
        public static let failedPrecondition = Code(rawValue: 9)
        public static let aborted = Code(rawValue: 10)
        public static let outOfRange = Code(rawValue: 11)
        public static let unimplemented = Code(rawValue: 12)
        public static let `internal` = Code(rawValue: 13)
        public static let unavailable = Code(rawValue: 14)
        public static let dataLoss = Code(rawValue: 15)
        public static let unauthenticated = Code(rawValue: 16)

        private static let names = [
            "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
            "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
            "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
        ]

        /// The canonical name, e.g. `INVALID_ARGUMENT`; `CODE_42` for codes outside the standard set.
        public var description: String {
            Self.names.indices.contains(rawValue) ? Self.names[rawValue] : "CODE_\(rawValue)"
        }
    }

    public var code: Code
    /// Shown to the caller: name the field and the fix, never internals or another tenant's data.
    public var message: String
    /// Sent as trailing metadata.
    public var metadata: Metadata
    /// The underlying error, for logs only; never sent over the wire.
    public var cause: (any Error)?
    /// A serialized `google.rpc.Status`, sent as `grpc-status-details-bin`.
    public var statusDetails: [UInt8]?

    public init(
        code: Code, message: String, metadata: Metadata = [:], cause: (any Error)? = nil,
        statusDetails: [UInt8]? = nil
    ) {
        self.code = code
        self.message = message
        self.metadata = metadata
        self.cause = cause
        self.statusDetails = statusDetails
    }

    /// Shorthand used throughout the library.
    public init(_ code: Code, _ message: String) {
        self.init(code: code, message: message)
    }

    public var description: String {
        message.isEmpty ? "\(code)" : "\(code): \(message)"
    }
}

/// The one place a domain error chooses its gRPC status. Errors that do not conform reach the
/// caller as UNKNOWN with a generic message, so internals never leak.
public protocol RPCErrorConvertible: Error {
    var rpcError: RPCError { get }
}

extension RPCError {
    /// How a server reports any error thrown by a handler or interceptor.
    static func fromHandler(_ error: any Error) -> RPCError {
        if let rpc = error as? RPCError { return rpc }
        if let convertible = error as? any RPCErrorConvertible { return convertible.rpcError }
        if error is CancellationError { return RPCError(code: .cancelled, message: "The call was cancelled.", cause: error) }
        return RPCError(code: .unknown, message: "The service method failed with an unexpected error.", cause: error)
    }
}
