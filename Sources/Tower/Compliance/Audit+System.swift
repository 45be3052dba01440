import TowerProtoRuntime
import TowerStore

extension Audit {
    /// An audit event for a decision the platform made on its own (an inbound STOP, a carrier
    /// event), with no person or API key acting: the actor columns stay empty.
    static func recordSystem(
        _ tx: Transaction, orgID: UUIDText, action: String, targetType: String, targetID: String, details: JSONValue = .object([])
    ) async throws {
        try await tx.execute(
            """
            INSERT INTO audit_events (org_id, actor_user_id, action, target_type, target_id, metadata)
            VALUES (\(orgID), NULL, \(action), \(targetType), \(targetID), \(details.serialized())::jsonb)
            """)
    }
}
