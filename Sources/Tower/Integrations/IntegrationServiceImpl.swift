import Foundation
import TowerCarrierHost
import TowerCrypto
import TowerProto
import TowerRPC
import TowerStandardServices
import TowerStore

/// IntegrationService: an org's carrier connections. Credentials are sealed with the master key
/// (bound to org and connection id) and never leave the server except to the plugin.
public struct IntegrationServiceImpl: IntegrationService.ServiceProtocol {
    let tenancy: Tenancy
    let box: SealedBox
    let registry: CarrierRegistry

    public init(store: Store, keys: KeyRing, registry: CarrierRegistry) {
        tenancy = Tenancy(store: store)
        box = keys.sealedBox
        self.registry = registry
    }

    static let keyID = "master"

    static func validateName(_ name: String, field: String = "name") throws -> String {
        let name = name.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.count <= 100 else { throw DomainError.invalid(field, "must be 1 to 100 characters") }
        return name
    }

    static func validate(credentials: [String: String], field: String = "credentials") throws {
        guard !credentials.isEmpty else {
            throw DomainError.invalid(field, "name at least one credential, e.g. Twilio's account_sid and auth_token")
        }
        for (key, value) in credentials where key.isEmpty || key.count > 64 || value.isEmpty || value.utf8.count > 4096 {
            _ = value
            throw DomainError.invalid("\(field).\(key)", "keys are 1 to 64 characters and values 1 to 4096 bytes")
        }
    }

    static func validate(settings: [String: String], field: String = "settings") throws {
        guard settings.count <= 50 else { throw DomainError.invalid(field, "at most 50 settings") }
        for (key, value) in settings where key.isEmpty || key.count > 64 || value.utf8.count > 2048 {
            throw DomainError.invalid("\(field).\(key)", "keys are 1 to 64 characters and values at most 2048 bytes")
        }
    }

    public func createCarrierConnection(request: CreateCarrierConnectionRequest, context: ServerContext) async throws -> CarrierConnection {
        guard request.carrier.wholeMatch(of: /[a-z0-9][a-z0-9-]{0,39}/) != nil else {
            throw DomainError.invalid(
                "carrier", "must be a carrier plugin name such as \"twilio\" or \"mock\" (lower-case letters, digits, dashes)")
        }
        let name = try Self.validateName(request.name)
        try Self.validate(credentials: request.credentials)
        try Self.validate(settings: request.settings)
        let box = box
        return try await tenancy.transaction(context) { tx, principal in
            let orgID = principal.orgID.description
            let id = UUID().uuidString.lowercased()
            let sealed = try CarrierConnectionRecords.seal(request.credentials, box: box, orgID: orgID, connectionID: id)
            let row = try await tx.query(
                """
                INSERT INTO carrier_connections AS c (id, org_id, provider, name, credentials_encrypted, credentials_key_id, settings, credential_hints)
                VALUES (\(UUIDText(id)!), \(principal.orgID), \(request.carrier), \(name), \(sealed), \(Self.keyID),
                        \(CarrierConnectionRecords.json(request.settings))::jsonb,
                        \(CarrierConnectionRecords.json(CarrierConnectionRecords.hints(request.credentials)))::jsonb)
                RETURNING \(unsafeRaw: CarrierConnectionRecords.columns)
                """
            ).one()
            let connection = try CarrierConnectionRecords.connection(row)
            try await Audit.record(
                tx, principal, action: "carrier_connection.create", targetType: "carrier_connection", targetID: id,
                details: .object([
                    ("carrier", .string(request.carrier)),
                    ("credential_keys", .array(request.credentials.keys.sorted().map { .string($0) })),
                ]))
            return connection
        }
    }

    public func getCarrierConnection(request: GetCarrierConnectionRequest, context: ServerContext) async throws -> CarrierConnection {
        let id = try IdentityRecords.id(request.connectionID, field: "connection_id")
        return try await tenancy.transaction(context, readOnly: true) { tx, _ in
            guard
                let row = try await tx.query(
                    "SELECT \(unsafeRaw: CarrierConnectionRecords.columns) FROM carrier_connections c WHERE c.id = \(id)"
                ).firstRow
            else { throw DomainError.notFound("carrier connection", request.connectionID) }
            return try CarrierConnectionRecords.connection(row)
        }
    }

    public func listCarrierConnections(request: ListCarrierConnectionsRequest, context: ServerContext) async throws
        -> ListCarrierConnectionsResponse
    {
        let size = try PageCursor.size(request.page)
        let cursor = try PageCursor.decode(request.page)
        return try await tenancy.transaction(context, readOnly: true) { tx, _ in
            let after: SQL = cursor.map { "WHERE (c.name, c.id) > (\($0.sortKey), \(UUIDText($0.id)))" } ?? ""
            let rows = try await tx.query(
                "SELECT \(unsafeRaw: CarrierConnectionRecords.columns) FROM carrier_connections c \(after) ORDER BY c.name, c.id LIMIT \(PageCursor.fetchLimit(size))"
            )
            var response = ListCarrierConnectionsResponse()
            let page = KeysetPage(rows, size: size)
            response.connections = try page.rows.map(CarrierConnectionRecords.connection)
            response.page = page.info(last: response.connections.last) { PageCursor(sortKey: $0.name, id: $0.id) }
            return response
        }
    }

    public func updateCarrierConnection(request: UpdateCarrierConnectionRequest, context: ServerContext) async throws -> CarrierConnection {
        let id = try IdentityRecords.id(request.connectionID, field: "connection_id")
        guard let paths = request.updateMask?.paths, !paths.isEmpty else {
            throw DomainError.invalid("update_mask", "name what to change: name, settings, credentials and/or status")
        }
        var assignments: [SQL] = []
        for path in paths {
            switch path {
            case "name": assignments.append("name = \(try Self.validateName(request.name))")
            case "settings":
                try Self.validate(settings: request.settings)
                assignments.append("settings = \(CarrierConnectionRecords.json(request.settings))::jsonb")
            case "credentials": try Self.validate(credentials: request.credentials)
            case "status":
                switch request.status {
                case .active: assignments.append("status = 'active', last_error_code = NULL")
                case .disabled: assignments.append("status = 'disabled'")
                default:
                    throw DomainError.invalid("status", "must be CARRIER_CONNECTION_STATUS_ACTIVE or CARRIER_CONNECTION_STATUS_DISABLED")
                }
            default:
                throw DomainError.invalid("update_mask", "\"\(path)\" cannot be changed; use name, settings, credentials or status")
            }
        }
        let box = box
        return try await tenancy.transaction(context) { tx, principal in
            if paths.contains("credentials") {
                let sealed = try CarrierConnectionRecords.seal(
                    request.credentials, box: box, orgID: principal.orgID.description, connectionID: id.text)
                assignments.append(
                    """
                    credentials_encrypted = \(sealed), credentials_key_id = \(Self.keyID),
                    credential_hints = \(CarrierConnectionRecords.json(CarrierConnectionRecords.hints(request.credentials)))::jsonb
                    """)
            }
            guard
                let row = try await tx.query(
                    """
                    UPDATE carrier_connections c SET \(SQL.join(assignments, separator: ", ")) WHERE c.id = \(id)
                    RETURNING \(unsafeRaw: CarrierConnectionRecords.columns)
                    """
                ).firstRow
            else { throw DomainError.notFound("carrier connection", request.connectionID) }
            try await Audit.record(
                tx, principal, action: "carrier_connection.update", targetType: "carrier_connection", targetID: id.text,
                details: .object([("paths", .array(paths.map { .string($0) }))]))
            return try CarrierConnectionRecords.connection(row)
        }
    }

    public func deleteCarrierConnection(request: DeleteCarrierConnectionRequest, context: ServerContext) async throws
        -> DeleteCarrierConnectionResponse
    {
        let id = try IdentityRecords.id(request.connectionID, field: "connection_id")
        try await tenancy.transaction(context) { tx, principal in
            guard try await tx.execute("DELETE FROM carrier_connections c WHERE c.id = \(id)") > 0 else {
                throw DomainError.notFound("carrier connection", request.connectionID)
            }
            try await Audit.record(tx, principal, action: "carrier_connection.delete", targetType: "carrier_connection", targetID: id.text)
        }
        await registry.forget(connectionID: id.text)
        return DeleteCarrierConnectionResponse()
    }

    /// Reads and decrypts a connection of the caller's org.
    private func resolve(_ idText: String, context: ServerContext) async throws -> ResolvedCarrierConnection {
        let id = try IdentityRecords.id(idText, field: "connection_id")
        let box = box
        let found = try await tenancy.transaction(context, readOnly: true) { tx, _ in
            try await CarrierConnectionRecords.resolve(tx, id: id, box: box)
        }
        guard let found else { throw DomainError.notFound("carrier connection", idText) }
        return found
    }

    public func testCarrierConnection(request: TestCarrierConnectionRequest, context: ServerContext) async throws
        -> TestCarrierConnectionResponse
    {
        let connection = try await resolve(request.connectionID, context: context)
        var response = TestCarrierConnectionResponse()
        // The plugin call happens outside any transaction: no database connection waits on a carrier.
        do {
            let host = try await registry.prepare(connection)
            let account = try await host.checkAccount(connection: connection.id)
            response.ok = true
            response.accountName = account.accountName
            response.accountStatus = account.status
            response.balance = account.balance
            response.currency = account.currency
        } catch let error as CarrierError {
            response.ok = false
            response.errorCode = Self.errorCode(error)
            response.errorMessage = error.message
        }
        let id = UUIDText(connection.id)!
        let errorCode = response.ok ? nil : response.errorCode
        response.connection = try await tenancy.transaction(context) { tx, principal in
            guard
                let row = try await tx.query(
                    """
                    UPDATE carrier_connections c SET last_checked_at = now(), last_error_code = \(errorCode),
                        status = CASE WHEN c.status = 'disabled' THEN 'disabled' WHEN \(errorCode)::text IS NULL THEN 'active' ELSE 'error' END
                    WHERE c.id = \(id) RETURNING \(unsafeRaw: CarrierConnectionRecords.columns)
                    """
                ).firstRow
            else { throw DomainError.notFound("carrier connection", request.connectionID) }
            try await Audit.record(
                tx, principal, action: "carrier_connection.test", targetType: "carrier_connection", targetID: connection.id,
                details: .object([("ok", .bool(response.ok))]))
            return try CarrierConnectionRecords.connection(row)
        }
        return response
    }

    /// The plugin error class as the API names it, e.g. "AUTH" or "PLUGIN_NOT_FOUND".
    static func errorCode(_ error: CarrierError) -> String {
        error.code.name.uppercased().replacingOccurrences(of: " ", with: "_")
    }

    public func sendTestMessage(request: SendTestMessageRequest, context: ServerContext) async throws -> SendTestMessageResponse {
        var violations: [FieldViolationInput] = []
        if !CarrierEventRecorder.isE164(request.from) { violations.append(("from", "must be an E.164 number such as +15125550100")) }
        if !CarrierEventRecorder.isE164(request.to) { violations.append(("to", "must be an E.164 number such as +15125550100")) }
        if request.body.isEmpty || request.body.count > 1600 { violations.append(("body", "must be 1 to 1600 characters")) }
        try throwIfInvalid(violations)
        let connection = try await resolve(request.connectionID, context: context)
        guard connection.status != "disabled" else {
            throw DomainError.failedPrecondition("carrier connection \(connection.id) is disabled; enable it first")
        }
        let optedOut = try await tenancy.transaction(context, readOnly: true) { tx, _ in
            try await tx.query("SELECT EXISTS (SELECT 1 FROM opt_outs WHERE phone = \(request.to) AND revoked_at IS NULL) AS o").one()
                .decode("o", as: Bool.self)
        }
        guard !optedOut else { throw DomainError.failedPrecondition("to: \(request.to) has opted out of messages from this org") }
        var message = Carrier_SendRequest()
        message.idempotencyKey = "test-" + UUID().uuidString.lowercased()
        message.from = request.from
        message.to = request.to
        message.body = request.body
        let result: SendResult
        do {
            let host = try await registry.prepare(connection)
            result = try await host.send(message, connection: connection.id)
        } catch let error as CarrierError {
            throw Self.rpcError(error)
        }
        try await tenancy.transaction(context) { tx, principal in
            try await Audit.record(
                tx, principal, action: "carrier_connection.send_test", targetType: "carrier_connection", targetID: connection.id,
                details: .object([("provider_message_id", .string(result.providerMessageID))]))
        }
        var response = SendTestMessageResponse()
        response.providerMessageID = result.providerMessageID
        response.carrierStatus = result.carrierStatus
        response.segments = Int32(clamping: result.segments)
        return response
    }

    /// A carrier refusal as the caller sees it; the plugin's message names the carrier's reason.
    static func rpcError(_ error: CarrierError) -> DomainError {
        let message = "carrier: \(error.message)"
        switch error.code {
        case .rateLimited: return DomainError(.resourceExhausted, message)
        case .auth, .permanent, .unsupported: return DomainError(.failedPrecondition, message)
        case .deadlineExceeded: return DomainError(.deadlineExceeded, message)
        case .cancelled: return DomainError(.cancelled, message)
        default: return DomainError(.unavailable, message)
        }
    }
}
