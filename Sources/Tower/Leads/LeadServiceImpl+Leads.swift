import Foundation
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

/// Lead CRUD, listing and export.
extension LeadServiceImpl {
    static func lead(_ tx: Transaction, id: UUIDText, idText: String) async throws -> Lead {
        guard let row = try await tx.query("SELECT \(unsafeRaw: LeadRecords.columns) FROM leads l WHERE l.id = \(id)").firstRow else {
            throw DomainError.notFound("lead", idText)
        }
        return try LeadRecords.lead(row)
    }

    static func textValue(_ lead: Lead, _ field: String) -> String {
        switch field {
        case "first_name": lead.firstName
        case "last_name": lead.lastName
        case "owner_name": lead.ownerName
        case "mailing_address": lead.mailingAddress
        case "mailing_city": lead.mailingCity
        case "mailing_state": lead.mailingState
        case "mailing_zip": lead.mailingZip
        case "property_address": lead.propertyAddress
        case "property_city": lead.propertyCity
        case "property_state": lead.propertyState
        case "property_zip": lead.propertyZip
        case "county": lead.county
        case "apn": lead.apn
        default: ""
        }
    }

    public func createLead(request: CreateLeadRequest, context: ServerContext) async throws -> Lead {
        let input = request.lead ?? Lead()
        var values: [SQL] = []
        for field in LeadRecords.textFields {
            values.append("\(try LeadRecords.normalized(field: field, Self.textValue(input, field), path: "lead.\(field)"))")
        }
        let acreage = try LeadRecords.acreage(input.acreage, path: "lead.acreage")
        let custom = try LeadRecords.customFields(input.customFields, path: "lead.custom_fields")
        let score = try LeadRecords.score(input.score, path: "lead.score")
        let status = try LeadRecords.statusText(input.status, path: "lead.status")
        let phones = try LeadRecords.phones(input.phones, path: "lead.phones")
        return try await tenancy.transaction(context) { tx, principal in
            try await LeadPhoneReplacement.lock(tx, org: principal.orgID, phones: phones.map(\.e164))
            try await LeadPhoneReplacement.refuseTaken(
                tx, org: principal.orgID, phones: phones.map(\.e164), of: nil, wanted: phones, path: "lead.phones")
            let id = try await tx.query(
                """
                INSERT INTO leads (org_id, \(unsafeRaw: LeadRecords.textFields.joined(separator: ", ")), acreage, custom_fields, score, status, source)
                VALUES (\(principal.orgID), \(SQL.join(values, separator: ", ")), \(acreage)::numeric, \(custom)::jsonb, \(Int(score)), \(status), 'api')
                RETURNING id::text AS id
                """
            ).one().decode("id", as: String.self)
            for (position, phone) in phones.enumerated() {
                try await tx.execute(
                    """
                    INSERT INTO lead_phones (org_id, lead_id, position, phone, phone_type)
                    VALUES (\(principal.orgID), \(UUIDText(id)!), \(position + 1), \(phone.e164), \(phone.type))
                    """)
            }
            try await Audit.record(tx, principal, action: "lead.create", targetType: "lead", targetID: id)
            return try await Self.lead(tx, id: UUIDText(id)!, idText: id)
        }
    }

    public func getLead(request: GetLeadRequest, context: ServerContext) async throws -> Lead {
        let id = try IdentityRecords.id(request.leadID, field: "lead_id")
        return try await tenancy.transaction(context, readOnly: true) { tx, _ in try await Self.lead(tx, id: id, idText: request.leadID) }
    }

    public func updateLead(request: UpdateLeadRequest, context: ServerContext) async throws -> Lead {
        let id = try IdentityRecords.id(request.leadID, field: "lead_id")
        guard let paths = request.updateMask?.paths, !paths.isEmpty else {
            throw DomainError.invalid(
                "update_mask", "name the fields to change, e.g. first_name, county, score, status, custom_fields, phones")
        }
        let input = request.lead ?? Lead()
        var assignments: [SQL] = []
        var phones: [LeadRecords.Phone]?
        for path in Set(paths).sorted() {
            switch path {
            case "phones": phones = try LeadRecords.phones(input.phones, path: "lead.phones")
            case _ where LeadRecords.textFields.contains(path):
                let value = try LeadRecords.normalized(field: path, Self.textValue(input, path), path: "lead.\(path)")
                assignments.append("\(unsafeRaw: path) = \(value)")
            case "acreage": assignments.append("acreage = \(try LeadRecords.acreage(input.acreage, path: "lead.acreage"))::numeric")
            case "custom_fields":
                assignments.append("custom_fields = \(try LeadRecords.customFields(input.customFields, path: "lead.custom_fields"))::jsonb")
            case "score": assignments.append("score = \(Int(try LeadRecords.score(input.score, path: "lead.score")))")
            case "status": assignments.append("status = \(try LeadRecords.statusText(input.status, path: "lead.status"))")
            default:
                throw DomainError.invalid(
                    "update_mask",
                    "\"\(path)\" cannot be changed here; use lead field names such as first_name, property_state, acreage, custom_fields, score, status, phones (tags: AddLeadTags, RemoveLeadTags)"
                )
            }
        }
        // A phones-only change still touches the lead: its row lock serialises phone changes.
        if assignments.isEmpty { assignments.append("updated_at = now()") }
        return try await tenancy.transaction(context) { tx, principal in
            guard
                try await tx.execute("UPDATE leads l SET \(SQL.join(assignments, separator: ", ")) WHERE l.id = \(id)", prepared: false) > 0
            else { throw DomainError.notFound("lead", request.leadID) }
            var details: [(String, JSONValue)] = [("paths", .array(paths.map { .string($0) }))]
            if let phones {
                let outcome = try await LeadPhoneReplacement.apply(tx, principal, lead: id, phones: phones, path: "lead.phones")
                details += [
                    ("phones_added", .array(outcome.added.map { .string($0) })),
                    ("phones_removed", .array(outcome.removed.map { .string($0) })),
                    ("cancelled_messages", .number(String(outcome.cancelledMessages))),
                    ("skipped_campaign_targets", .number(String(outcome.skippedTargets))),
                ]
            }
            try await Audit.record(tx, principal, action: "lead.update", targetType: "lead", targetID: id.text, details: .object(details))
            return try await Self.lead(tx, id: id, idText: request.leadID)
        }
    }

    public func deleteLead(request: DeleteLeadRequest, context: ServerContext) async throws -> DeleteLeadResponse {
        let id = try IdentityRecords.id(request.leadID, field: "lead_id")
        try await tenancy.transaction(context) { tx, principal in
            guard try await tx.execute("DELETE FROM leads l WHERE l.id = \(id)") > 0 else {
                throw DomainError.notFound("lead", request.leadID)
            }
            try await Audit.record(tx, principal, action: "lead.delete", targetType: "lead", targetID: id.text)
        }
        return DeleteLeadResponse()
    }

    public func listLeads(request: ListLeadsRequest, context: ServerContext) async throws -> ListLeadsResponse {
        let size = try PageCursor.size(request.page)
        let cursor = try PageCursor.decode(request.page)
        let conditions = try LeadRecords.conditions(request.filter)
        var after: SQL = ""
        if let cursor {
            let (micros, id) = try cursor.timeKey()
            after = "AND (l.created_at, l.id) < (\(micros) * interval '1 microsecond' + 'epoch'::timestamptz, \(id))"
        }
        return try await tenancy.transaction(context, readOnly: true) { tx, _ in
            let rows = try await tx.query(
                """
                SELECT \(unsafeRaw: LeadRecords.columns) FROM leads l WHERE \(conditions) \(after)
                ORDER BY l.created_at DESC, l.id DESC LIMIT \(PageCursor.fetchLimit(size))
                """, prepared: false)
            var response = ListLeadsResponse()
            let page = KeysetPage(rows, size: size)
            response.leads = try page.rows.map(LeadRecords.lead)
            response.page = try page.info {
                PageCursor(sortKey: String(try $0.decode("created_us", as: Int64.self)), id: try $0.decode("id", as: String.self))
            }
            return response
        }
    }

    /// Export columns: headers ImportLeads maps by itself, so an export imports back unchanged.
    /// The export's FROM: phone positions are unique per lead, so each join adds at most one row.
    /// Three hash joins cost a third of the CPU of six per-row subqueries (6.4 s against 17.3 s
    /// per million leads with two phones each, measured in PostgreSQL).
    static let exportFrom = """
        ctower_export_ids e JOIN leads l ON l.id = e.id
        LEFT JOIN lead_phones p1 ON p1.lead_id = l.id AND p1.position = 1
        LEFT JOIN lead_phones p2 ON p2.lead_id = l.id AND p2.position = 2
        LEFT JOIN lead_phones p3 ON p3.lead_id = l.id AND p3.position = 3
        """

    static let exportColumns: [(header: String, sql: String)] = {
        var columns: [(String, String)] = [
            ("First Name", "l.first_name"), ("Last Name", "l.last_name"), ("Owner Name", "l.owner_name"),
        ]
        for n in 1...3 {
            columns.append(("Phone \(n)", "p\(n).phone"))
            columns.append(("Phone \(n) Type", "nullif(p\(n).phone_type, 'unknown')"))
        }
        columns += [
            ("Mailing Address", "l.mailing_address"), ("Mailing City", "l.mailing_city"), ("Mailing State", "l.mailing_state"),
            ("Mailing Zip", "l.mailing_zip"), ("Property Address", "l.property_address"), ("Property City", "l.property_city"),
            ("Property State", "l.property_state"), ("Property Zip", "l.property_zip"), ("County", "l.county"), ("APN", "l.apn"),
            ("Acreage", "trim_scale(l.acreage)"),
            (
                "Tags",
                "(SELECT string_agg(t.name, '; ' ORDER BY lower(t.name)) FROM lead_tags lt JOIN tags t ON t.id = lt.tag_id WHERE lt.lead_id = l.id)"
            ),
            ("Score", "l.score"), ("Lead Status", "l.status"), ("Lead ID", "l.id"),
        ]
        return columns
    }()

    public func exportLeads(request: ExportLeadsRequest, responses: ResponseStreamWriter<ExportLeadsChunk>, context: ServerContext)
        async throws
    {
        let conditions = try LeadRecords.conditions(request.filter)
        // Not read-only: the id table is a temporary table, which read-only transactions cannot create.
        try await tenancy.transaction(context) { tx, _ in
            // COPY takes no parameters: the filter (with its bound values) selects ids into a
            // transaction-local table, and COPY reads through it.
            try await tx.execute(
                "CREATE TEMP TABLE ctower_export_ids ON COMMIT DROP AS SELECT l.id, l.created_at FROM leads l WHERE \(conditions)",
                prepared: false)
            // One column per custom field key of the exported leads, in byte order: stable
            // whatever the database's collation.
            let keys = try await tx.query(
                """
                SELECT DISTINCT k.key COLLATE "C" AS key FROM ctower_export_ids e JOIN leads l ON l.id = e.id
                CROSS JOIN LATERAL jsonb_object_keys(l.custom_fields) AS k(key) WHERE l.custom_fields <> '{}' ORDER BY 1
                """, prepared: false
            ).map { try $0.decode("key", as: String.self) }
            let columns =
                Self.exportColumns
                + keys.map { (header: LeadImportPlan.customPrefix + $0, sql: "l.custom_fields ->> \(SQL.quoteLiteral($0))") }
            // The header row is written here, not by COPY: PostgreSQL cuts column names at 63
            // bytes, and a custom field key may be 100 characters.
            var header = ExportLeadsChunk()
            header.data = Array((columns.map { Self.csvField($0.header) }.joined(separator: ",") + "\n").utf8)
            try await responses.write(header)
            try await tx.copyOut(
                """
                COPY (SELECT \(unsafeRaw: columns.map(\.sql).joined(separator: ", "))
                      FROM \(unsafeRaw: Self.exportFrom) ORDER BY e.created_at, e.id)
                TO STDOUT WITH (FORMAT csv)
                """
            ) { bytes in
                var chunk = ExportLeadsChunk()
                chunk.data = bytes
                try await responses.write(chunk)
            }
        }
    }

    /// One RFC 4180 field: quoted when it holds a delimiter, a quote or a line break, or starts or
    /// ends with whitespace (which a reader might trim).
    static func csvField(_ text: String) -> String {
        let needsQuotes =
            text.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
            || text.first?.isWhitespace == true || text.last?.isWhitespace == true
        return needsQuotes ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }
}
