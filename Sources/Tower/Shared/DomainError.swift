import TowerRPC
import TowerStandardServices
import TowerStore

/// An error a domain handler throws on purpose. Its message is shown to the caller: it names the
/// field or rule and the fix, and never contains another tenant's data or a secret.
public struct DomainError: Error, Sendable, RPCErrorConvertible {
    public var code: RPCError.Code
    public var message: String
    public var violations: [FieldViolation]

    public init(_ code: RPCError.Code, _ message: String, violations: [FieldViolation] = []) {
        self.code = code
        self.message = message
        self.violations = violations
    }

    public var rpcError: RPCError {
        violations.isEmpty ? RPCError(code, message) : .invalidArgument(violations, message: message)
    }

    public static func invalid(_ field: String, _ fix: String) -> DomainError {
        DomainError(.invalidArgument, "\(field): \(fix)", violations: [FieldViolation(field: field, description: fix)])
    }

    public static func invalid(_ violations: [FieldViolation]) -> DomainError {
        DomainError(.invalidArgument, violations.map { "\($0.field): \($0.description)" }.joined(separator: "; "), violations: violations)
    }

    /// The same answer for "does not exist" and "belongs to another org", so ids cannot be probed.
    public static func notFound(_ what: String, _ id: String) -> DomainError {
        DomainError(.notFound, "\(what) \(id) was not found")
    }

    public static func unauthenticated(_ message: String) -> DomainError { DomainError(.unauthenticated, message) }
    public static func permissionDenied(_ message: String) -> DomainError { DomainError(.permissionDenied, message) }
    public static func failedPrecondition(_ message: String) -> DomainError { DomainError(.failedPrecondition, message) }
}

/// The one mapping from storage errors to RPC statuses. `StoreError.message` never carries row
/// data, so it is safe to pass on for the constraint-shaped codes.
extension StoreError: RPCErrorConvertible {
    public var rpcError: RPCError {
        switch code {
        case .unavailable: return RPCError(.unavailable, "the database is unavailable; retry shortly")
        case .alreadyExists: return RPCError(.alreadyExists, message)
        case .foreignKeyViolation, .ruleViolation: return RPCError(.failedPrecondition, message)
        case .checkViolation, .notNull, .invalidValue: return RPCError(.invalidArgument, message)
        case .serialization: return RPCError(.aborted, "the request conflicted with a concurrent change; retry it")
        case .timeout: return RPCError(.deadlineExceeded, "the deadline passed while the database was working")
        case .cancelled: return RPCError(.cancelled, "the call was cancelled")
        case .permissionDenied: return RPCError(.permissionDenied, "the request tried to touch data outside its org")
        default: return RPCError(.internal, "internal error (request logged)")
        }
    }
}
