import Foundation

/// The id of an org (a tenant). Row-level security scopes every tenant table to one of these.
public struct OrgID: Hashable, Sendable, CustomStringConvertible, SQLCodable {
    public let uuid: UUID
    public init(_ uuid: UUID) { self.uuid = uuid }
    public init?(_ text: String) {
        guard let uuid = UUID(uuidString: text) else { return nil }
        self.uuid = uuid
    }
    /// A fresh random id.
    public static func random() -> OrgID { OrgID(UUID()) }
    public var description: String { uuid.uuidString.lowercased() }
    public static var sqlTypeOID: UInt32 { PostgresType.uuid }
    public var sqlBinding: SQLBinding { uuid.sqlBinding }
    public init?(sqlText: String) { self.init(sqlText) }
}

/// The id of a user, recorded as the acting user of a transaction (`ctower.user_id`).
public struct UserID: Hashable, Sendable, CustomStringConvertible, SQLCodable {
    public let uuid: UUID
    public init(_ uuid: UUID) { self.uuid = uuid }
    public init?(_ text: String) {
        guard let uuid = UUID(uuidString: text) else { return nil }
        self.uuid = uuid
    }
    public static func random() -> UserID { UserID(UUID()) }
    public var description: String { uuid.uuidString.lowercased() }
    public static var sqlTypeOID: UInt32 { PostgresType.uuid }
    public var sqlBinding: SQLBinding { uuid.sqlBinding }
    public init?(sqlText: String) { self.init(sqlText) }
}
