import Foundation
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

/// NumberService: the org's pool of sender numbers. Registering does not buy a number at the
/// carrier; it records one the org already holds behind one of its carrier connections.
public struct NumberServiceImpl: NumberService.ServiceProtocol {
    let tenancy: Tenancy

    public init(store: Store) { tenancy = Tenancy(store: store) }

    static let rateFix = "must be greater than 0 and at most \(Int(NumberRecords.maxMessagesPerSecond)) messages per second"
    static let capFix = "must be 1 to \(NumberRecords.maxDailyCap) messages per day"

    public func addNumber(request: AddNumberRequest, context: ServerContext) async throws -> PhoneNumber {
        var violations: [FieldViolationInput] = []
        let connectionID = UUIDText(request.carrierConnectionID)
        if connectionID == nil {
            violations.append(("carrier_connection_id", "must be the id of one of the org's carrier connections"))
        }
        if !CarrierEventRecorder.isE164(request.phone) {
            violations.append(("phone", "must be an E.164 number such as +15125550100"))
        }
        let kind = NumberRecords.databaseName(request.kind)
        if kind == nil { violations.append(("kind", "must be LONG_CODE, TOLL_FREE or SHORT_CODE")) }
        if let rate = request.messagesPerSecond, !NumberRecords.validRate(rate) {
            violations.append(("messages_per_second", Self.rateFix))
        }
        if let cap = request.dailyCap, !NumberRecords.validDailyCap(cap) { violations.append(("daily_cap", Self.capFix)) }
        let state: String
        switch request.initialState {
        case .unspecified, .warming: state = "warming"
        case .active: state = "active"
        default:
            state = ""
            violations.append(("initial_state", "must be WARMING (new to sending) or ACTIVE; quarantine with UpdateNumber"))
        }
        let providerID = request.providerNumberID.trimmingCharacters(in: .whitespaces)
        if providerID.count > 100 { violations.append(("provider_number_id", "must be at most 100 characters")) }
        try throwIfInvalid(violations)
        guard let connectionID, let kind else { throw DomainError.invalid("kind", "unreachable") }
        let rate = request.messagesPerSecond ?? NumberRecords.defaultMessagesPerSecond(kind)
        return try await tenancy.transaction(context) { tx, principal in
            guard
                try await tx.query("SELECT 1 FROM carrier_connections WHERE id = \(connectionID)").firstRow != nil
            else { throw DomainError.notFound("carrier connection", request.carrierConnectionID) }
            let row = try await tx.query(
                """
                INSERT INTO phone_numbers AS n (org_id, carrier_connection_id, phone, provider_number_id, kind, state, messages_per_second, daily_cap)
                SELECT \(principal.orgID), \(connectionID), \(request.phone), nullif(\(providerID), ''), \(kind), \(state), \(rate),
                       coalesce(\(request.dailyCap.map(Int.init))::int4, o.default_daily_cap)
                FROM orgs o WHERE o.id = \(principal.orgID)
                RETURNING \(unsafeRaw: NumberRecords.columns)
                """
            ).one()
            let number = try NumberRecords.number(row)
            try await Audit.record(
                tx, principal, action: "phone_number.add", targetType: "phone_number", targetID: number.id,
                details: .object([("phone", .string(number.phone)), ("state", .string(state))]))
            return number
        }
    }

    public func listNumbers(request: ListNumbersRequest, context: ServerContext) async throws -> ListNumbersResponse {
        let size = try PageCursor.size(request.page)
        let cursor = try PageCursor.decode(request.page)
        var states: [String] = []
        for (index, state) in request.states.enumerated() {
            guard let name = NumberRecords.databaseName(state) else {
                throw DomainError.invalid("states[\(index)]", "must be WARMING, ACTIVE, QUARANTINED or RELEASED")
            }
            states.append(name)
        }
        if states.isEmpty { states = ["warming", "active", "quarantined"] }
        return try await tenancy.transaction(context, readOnly: true) { tx, _ in
            let after: SQL = cursor.map { "AND (n.phone, n.id) > (\($0.sortKey), \(UUIDText($0.id)))" } ?? ""
            let rows = try await tx.query(
                """
                SELECT \(unsafeRaw: NumberRecords.columns) FROM phone_numbers n
                WHERE n.state = ANY(\(states)) \(after) ORDER BY n.phone, n.id LIMIT \(PageCursor.fetchLimit(size))
                """)
            var response = ListNumbersResponse()
            let page = KeysetPage(rows, size: size)
            response.numbers = try page.rows.map(NumberRecords.number)
            response.page = page.info(last: response.numbers.last) { PageCursor(sortKey: $0.phone, id: $0.id) }
            return response
        }
    }

    public func updateNumber(request: UpdateNumberRequest, context: ServerContext) async throws -> PhoneNumber {
        let id = try IdentityRecords.id(request.phoneNumberID, field: "phone_number_id")
        guard let paths = request.updateMask?.paths, !paths.isEmpty else {
            throw DomainError.invalid("update_mask", "name what to change: messages_per_second, daily_cap and/or state")
        }
        var assignments: [SQL] = []
        var newState: String?
        for path in paths {
            switch path {
            case "messages_per_second":
                guard NumberRecords.validRate(request.messagesPerSecond) else { throw DomainError.invalid(path, Self.rateFix) }
                assignments.append("messages_per_second = \(request.messagesPerSecond)")
            case "daily_cap":
                guard NumberRecords.validDailyCap(request.dailyCap) else { throw DomainError.invalid(path, Self.capFix) }
                assignments.append("daily_cap = \(Int(request.dailyCap))")
            case "state":
                switch request.state {
                case .active, .warming:
                    let state = NumberRecords.databaseName(request.state)!
                    newState = state
                    assignments.append("state = \(state), quarantined_at = NULL, quarantine_reason = NULL")
                case .quarantined:
                    let reason = request.quarantineReason.trimmingCharacters(in: .whitespacesAndNewlines)
                    guard !reason.isEmpty, reason.count <= 500 else {
                        throw DomainError.invalid("quarantine_reason", "say why the number is quarantined (1 to 500 characters)")
                    }
                    newState = "quarantined"
                    assignments.append(
                        "state = 'quarantined', quarantined_at = coalesce(n.quarantined_at, now()), quarantine_reason = \(reason)")
                case .released:
                    throw DomainError.invalid("state", "release a number with ReleaseNumber")
                default:
                    throw DomainError.invalid("state", "must be ACTIVE, WARMING or QUARANTINED")
                }
            default:
                throw DomainError.invalid("update_mask", "\"\(path)\" cannot be changed; use messages_per_second, daily_cap or state")
            }
        }
        return try await tenancy.transaction(context) { tx, principal in
            guard let current = try await tx.query("SELECT n.state FROM phone_numbers n WHERE n.id = \(id) FOR UPDATE").firstRow else {
                throw DomainError.notFound("phone number", request.phoneNumberID)
            }
            if try current.decode("state", as: String.self) == "released" {
                throw DomainError.failedPrecondition("phone number \(id.text) is RELEASED; add it again with AddNumber to use it")
            }
            let row = try await tx.query(
                """
                UPDATE phone_numbers n SET \(SQL.join(assignments, separator: ", ")) WHERE n.id = \(id)
                RETURNING \(unsafeRaw: NumberRecords.columns)
                """
            ).one()
            var details: [(String, JSONValue)] = [("paths", .array(paths.map { .string($0) }))]
            if let newState { details.append(("state", .string(newState))) }
            if newState == "quarantined" { details.append(("reason", .string(request.quarantineReason))) }
            try await Audit.record(
                tx, principal, action: "phone_number.update", targetType: "phone_number", targetID: id.text, details: .object(details))
            return try NumberRecords.number(row)
        }
    }

    public func releaseNumber(request: ReleaseNumberRequest, context: ServerContext) async throws -> PhoneNumber {
        let id = try IdentityRecords.id(request.phoneNumberID, field: "phone_number_id")
        return try await tenancy.transaction(context) { tx, principal in
            guard let current = try await tx.query("SELECT n.state FROM phone_numbers n WHERE n.id = \(id) FOR UPDATE").firstRow else {
                throw DomainError.notFound("phone number", request.phoneNumberID)
            }
            if try current.decode("state", as: String.self) == "released" {
                throw DomainError.failedPrecondition("phone number \(id.text) is already RELEASED")
            }
            let row = try await tx.query(
                """
                UPDATE phone_numbers n SET state = 'released', released_at = now(), quarantined_at = NULL, quarantine_reason = NULL
                WHERE n.id = \(id) RETURNING \(unsafeRaw: NumberRecords.columns)
                """
            ).one()
            try await Audit.record(tx, principal, action: "phone_number.release", targetType: "phone_number", targetID: id.text)
            return try NumberRecords.number(row)
        }
    }
}
