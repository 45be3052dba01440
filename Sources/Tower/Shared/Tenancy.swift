import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

/// Runs request work in a transaction scoped to the caller's org and user, under the call's
/// deadline: the tenant is set before the body runs, so row-level security applies to every
/// statement.
public struct Tenancy: Sendable {
    public let store: Store

    public init(store: Store) { self.store = store }

    public func transaction<Value: Sendable>(
        _ context: ServerContext, readOnly: Bool = false, _ body: (Transaction, RequestPrincipal) async throws -> Value
    ) async throws -> Value {
        let principal = try RequestPrincipal.required()
        return try await store.withTransaction(
            tenant: principal.orgID, user: principal.userID, deadline: context.deadline, readOnly: readOnly
        ) { tx in
            try await body(tx, principal)
        }
    }
}

/// Audit trail: every mutation writes one row in the same transaction as the change.
public enum Audit {
    public static func record(
        _ tx: Transaction, _ principal: RequestPrincipal, action: String, targetType: String, targetID: String,
        details: JSONValue = .object([])
    ) async throws {
        try await tx.execute(
            """
            INSERT INTO audit_events (org_id, actor_user_id, actor_api_key_id, action, target_type, target_id, request_id, peer_address, metadata)
            VALUES (\(principal.orgID), \(principal.userID), \(principal.apiKeyID.flatMap(UUIDText.init)), \(action), \(targetType), \(targetID),
                    \(principal.requestID), \(principal.peer), \(details.serialized())::jsonb)
            """)
    }
}

/// A UUID in text form, bound as a uuid parameter.
struct UUIDText: SQLEncodable {
    let text: String
    init?(_ text: String) {
        guard OrgID(text) != nil else { return nil }
        self.text = text
    }
    static var sqlTypeOID: UInt32 { PostgresType.uuid }
    var sqlBinding: SQLBinding { .text(text, typeOID: PostgresType.uuid) }
}

/// Conversions between database timestamps and protobuf Timestamps.
enum Timestamps {
    /// SQL that selects a timestamptz as microseconds since the epoch (bigint), or NULL.
    static func micros(_ column: String) -> String { "(extract(epoch FROM \(column)) * 1000000)::bigint" }

    static func proto(micros: Int64?) -> Google_Protobuf_Timestamp? {
        guard let micros else { return nil }
        var t = Google_Protobuf_Timestamp()
        t.seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        t.nanos = Int32((micros - t.seconds * 1_000_000) * 1000)
        return t
    }
}
