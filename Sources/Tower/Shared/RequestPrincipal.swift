import TowerProto
import TowerStore

/// Who is making the current request and where it acts, established by `AuthInterceptor` and
/// read by handlers through the task-local `RequestPrincipal.current`.
public struct RequestPrincipal: Sendable {
    public enum Actor: Sendable, Hashable {
        case user(UserID)
        case apiKey(id: String, createdBy: UserID?)
    }

    public var actor: Actor
    /// The org the request acts in: the caller's own, or a client org named by `x-ctower-org`.
    public var orgID: OrgID
    /// The org the credentials belong to.
    public var homeOrgID: OrgID
    /// The caller's role in `orgID` (for API keys, the role their scopes amount to).
    public var role: Role
    public var requestID: String
    public var peer: String

    /// The user acting, if a person (or the creator of the API key).
    public var userID: UserID? {
        switch actor {
        case .user(let id): return id
        case .apiKey(_, let createdBy): return createdBy
        }
    }

    public var apiKeyID: String? {
        if case .apiKey(let id, _) = actor { return id }
        return nil
    }

    @TaskLocal public static var current: RequestPrincipal?

    /// The current principal, or UNAUTHENTICATED (a handler reached without the interceptor is a bug
    /// that must fail closed).
    public static func required() throws -> RequestPrincipal {
        guard let p = current else {
            throw DomainError.unauthenticated("this call needs credentials: send authorization: Bearer <token or API key>")
        }
        return p
    }
}

extension Role: Comparable {
    /// viewer < agent < admin < owner.
    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rawValue < rhs.rawValue }

    init?(databaseName: String) {
        switch databaseName {
        case "viewer": self = .viewer
        case "agent": self = .agent
        case "admin": self = .admin
        case "owner": self = .owner
        default: return nil
        }
    }

    var databaseName: String? {
        switch self {
        case .viewer: "viewer"
        case .agent: "agent"
        case .admin: "admin"
        case .owner: "owner"
        default: nil
        }
    }
}
