import Foundation
import TowerCrypto
import TowerProto
import TowerProtoRuntime
import TowerStore

/// A carrier connection as the server uses it: decrypted credentials, for the plugin only.
struct ResolvedCarrierConnection: Sendable {
    var id: String
    var orgID: String
    var carrier: String
    var status: String
    var credentials: [String: String]
    var settings: [String: String]
    /// Changes whenever credentials or settings change, so the plugin is re-configured.
    var fingerprint: String
}

/// SQL, row mapping and credential sealing for `carrier_connections`.
enum CarrierConnectionRecords {
    static let columns = """
        c.id::text AS id, c.org_id::text AS org_id, c.provider, c.name, c.settings::text AS settings,
        c.credential_hints::text AS credential_hints, c.status, \(Timestamps.micros("c.last_checked_at")) AS last_checked_us,
        c.last_error_code, \(Timestamps.micros("c.created_at")) AS created_us, \(Timestamps.micros("c.updated_at")) AS updated_us
        """

    static func webhookPath(_ id: String) -> String { "/webhooks/carriers/\(id)" }

    static func connection(_ row: Row) throws -> CarrierConnection {
        var c = CarrierConnection()
        c.id = try row.decode("id", as: String.self)
        c.carrier = try row.decode("provider", as: String.self)
        c.name = try row.decode("name", as: String.self)
        c.settings = stringMap(try row.decode("settings", as: String.self))
        c.credentialHints = stringMap(try row.decode("credential_hints", as: String.self))
        c.webhookURLPath = webhookPath(c.id)
        c.status = status(try row.decode("status", as: String.self))
        c.lastCheckTime = Timestamps.proto(micros: try row.decode("last_checked_us", as: Int64?.self))
        c.lastErrorCode = try row.decode("last_error_code", as: String?.self) ?? ""
        c.createTime = Timestamps.proto(micros: try row.decode("created_us", as: Int64?.self))
        c.updateTime = Timestamps.proto(micros: try row.decode("updated_us", as: Int64?.self))
        return c
    }

    static func status(_ text: String) -> CarrierConnectionStatus {
        switch text {
        case "active": .active
        case "disabled": .disabled
        case "error": .error
        default: .unspecified
        }
    }

    // MARK: Maps as JSON objects

    static func json(_ map: [String: String]) -> String {
        JSONValue.object(map.keys.sorted().map { ($0, .string(map[$0]!)) }).serialized()
    }

    static func stringMap(_ json: String) -> [String: String] {
        guard case .object(let members)? = try? JSONValue.parse(json) else { return [:] }
        var map: [String: String] = [:]
        for (key, value) in members { if case .string(let s) = value { map[key] = s } }
        return map
    }

    // MARK: Credentials

    /// What a caller may see of a secret: its last 4 characters when long enough that they give
    /// nothing useful away, otherwise nothing.
    static func hint(_ secret: String) -> String { secret.count >= 12 ? "****" + secret.suffix(4) : "****" }

    static func hints(_ credentials: [String: String]) -> [String: String] { credentials.mapValues(hint) }

    /// Binds the ciphertext to its row: a value copied into another org's or connection's row
    /// does not open.
    static func associatedData(orgID: String, connectionID: String) -> [UInt8] {
        Array("ctower.carrier_connections:\(orgID.lowercased()):\(connectionID.lowercased())".utf8)
    }

    static func seal(_ credentials: [String: String], box: SealedBox, orgID: String, connectionID: String) throws -> [UInt8] {
        try box.seal(Array(json(credentials).utf8), associatedData: associatedData(orgID: orgID, connectionID: connectionID))
    }

    static func open(_ sealed: [UInt8], box: SealedBox, orgID: String, connectionID: String) throws -> [String: String] {
        let plaintext = try box.open(sealed, associatedData: associatedData(orgID: orgID, connectionID: connectionID))
        return stringMap(String(decoding: plaintext, as: UTF8.self))
    }

    /// Reads and decrypts a connection inside a tenant transaction; nil when RLS hides it or it
    /// does not exist.
    static func resolve(_ tx: Transaction, id: UUIDText, box: SealedBox) async throws -> ResolvedCarrierConnection? {
        guard
            let row = try await tx.query(
                """
                SELECT c.id::text AS id, c.org_id::text AS org_id, c.provider, c.status, c.settings::text AS settings,
                       c.credentials_encrypted
                FROM carrier_connections c WHERE c.id = \(id)
                """
            ).firstRow
        else { return nil }
        let connectionID = try row.decode("id", as: String.self)
        let orgID = try row.decode("org_id", as: String.self)
        let sealed = try row.decode("credentials_encrypted", as: [UInt8].self)
        let settingsJSON = try row.decode("settings", as: String.self)
        let credentials: [String: String]
        do {
            credentials = try open(sealed, box: box, orgID: orgID, connectionID: connectionID)
        } catch {
            // Wrong master key or a tampered row: never say more than that.
            throw DomainError.failedPrecondition(
                "the credentials of carrier connection \(connectionID) cannot be decrypted with this server's master key; replace them")
        }
        return ResolvedCarrierConnection(
            id: connectionID, orgID: orgID, carrier: try row.decode("provider", as: String.self),
            status: try row.decode("status", as: String.self),
            credentials: credentials, settings: stringMap(settingsJSON),
            fingerprint: Crypto.hex(Crypto.sha256(sealed + Array(settingsJSON.utf8))))
    }
}
