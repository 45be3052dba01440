import Foundation
import TowerProto
import TowerProtoRuntime
import TowerStandardServices
import TowerStore

/// SQL, row mapping, input validation and filters for `leads` and their phones and tags.
enum LeadRecords {
    static let textFields = [
        "first_name", "last_name", "owner_name", "mailing_address", "mailing_city", "mailing_state", "mailing_zip",
        "property_address", "property_city", "property_state", "property_zip", "county", "apn",
    ]

    static let columns = """
        l.id::text AS id, \(textFields.map { "l." + $0 }.joined(separator: ", ")), l.acreage::text AS acreage,
        l.custom_fields::text AS custom_fields, l.score, l.status, l.import_job_id::text AS import_job_id,
        EXISTS (SELECT 1 FROM messages m WHERE m.lead_id = l.id AND m.direction = 'inbound') AS has_replied,
        \(Timestamps.micros("l.created_at")) AS created_us, \(Timestamps.micros("l.updated_at")) AS updated_us,
        (SELECT coalesce(json_agg(json_build_array(p.id, p.position, p.phone, p.phone_type, p.consent_status) ORDER BY p.position), '[]')::text
         FROM lead_phones p WHERE p.lead_id = l.id) AS phones,
        (SELECT coalesce(json_agg(json_build_array(t.id, t.name, t.color, \(Timestamps.micros("t.created_at"))) ORDER BY lower(t.name)), '[]')::text
         FROM lead_tags lt JOIN tags t ON t.id = lt.tag_id WHERE lt.lead_id = l.id) AS tags
        """

    static func lead(_ row: Row) throws -> Lead {
        var lead = Lead()
        lead.id = try row.decode("id", as: String.self)
        let text = { (name: String) throws -> String in try row.decode(name, as: String?.self) ?? "" }
        lead.firstName = try text("first_name")
        lead.lastName = try text("last_name")
        lead.ownerName = try text("owner_name")
        lead.mailingAddress = try text("mailing_address")
        lead.mailingCity = try text("mailing_city")
        lead.mailingState = try text("mailing_state")
        lead.mailingZip = try text("mailing_zip")
        lead.propertyAddress = try text("property_address")
        lead.propertyCity = try text("property_city")
        lead.propertyState = try text("property_state")
        lead.propertyZip = try text("property_zip")
        lead.county = try text("county")
        lead.apn = try text("apn")
        lead.acreage = Self.trimmedDecimal(try text("acreage"))
        lead.customFields = CarrierConnectionRecords.stringMap(try row.decode("custom_fields", as: String.self))
        lead.score = Int32(try row.decode("score", as: Int32.self))
        lead.status = status(try row.decode("status", as: String.self))
        lead.importJobID = try text("import_job_id")
        lead.hasReplied = try row.decode("has_replied", as: Bool.self)
        lead.createTime = Timestamps.proto(micros: try row.decode("created_us", as: Int64?.self))
        lead.updateTime = Timestamps.proto(micros: try row.decode("updated_us", as: Int64?.self))
        if case .array(let phones)? = try? JSONValue.parse(try row.decode("phones", as: String.self)) {
            lead.phones = phones.compactMap { item in
                guard case .array(let v) = item, v.count == 5, case .string(let id) = v[0], case .number(let position) = v[1],
                    case .string(let phone) = v[2], case .string(let type) = v[3], case .string(let consent) = v[4]
                else { return nil }
                var p = LeadPhone()
                p.id = id
                p.position = Int32(position) ?? 0
                p.phone = phone
                p.type = ColumnMapping.PhoneKind(rawValue: type).map(LeadFieldMapping.proto) ?? .unspecified
                p.consentStatus = consentStatus(consent)
                return p
            }
        }
        if case .array(let tags)? = try? JSONValue.parse(try row.decode("tags", as: String.self)) {
            lead.tags = tags.compactMap { item in
                guard case .array(let v) = item, v.count == 4, case .string(let id) = v[0], case .string(let name) = v[1] else {
                    return nil
                }
                var tag = Tag()
                tag.id = id
                tag.name = name
                if case .string(let color) = v[2] { tag.color = color }
                if case .number(let micros) = v[3] { tag.createTime = Timestamps.proto(micros: Int64(micros)) }
                return tag
            }
        }
        return lead
    }

    /// "12.5000" -> "12.5".
    static func trimmedDecimal(_ text: String) -> String {
        guard text.contains(".") else { return text }
        var t = Substring(text)
        while t.last == "0" { t = t.dropLast() }
        if t.last == "." { t = t.dropLast() }
        return String(t)
    }

    static let statuses: [(LeadStatus, String)] = [
        (.new, "new"), (.contacted, "contacted"), (.replied, "replied"), (.interested, "interested"), (.notInterested, "not_interested"),
        (.underContract, "under_contract"), (.closed, "closed"), (.dead, "dead"),
    ]

    static func status(_ text: String) -> LeadStatus { statuses.first { $0.1 == text }?.0 ?? .unspecified }

    static func consentStatus(_ text: String) -> ConsentStatus {
        switch text {
        case "unknown": .unknown
        case "granted": .granted
        case "revoked": .revoked
        default: .unspecified
        }
    }

    // MARK: Input

    /// The value to store for one text field of a lead, or the problem with it.
    static func normalized(field: String, _ raw: String, path: String) throws -> String? {
        let value = raw.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        guard !value.isEmpty else { return nil }
        guard value.count <= 500 else { throw DomainError.invalid(path, "at most 500 characters") }
        switch field {
        case "first_name", "last_name", "owner_name", "mailing_city", "property_city": return LeadFieldNormalizer.name(value)
        case "mailing_state", "property_state":
            guard let code = LeadFieldNormalizer.stateCode(value) else {
                throw DomainError.invalid(path, "must be a US state's USPS code or name, e.g. TX or Texas")
            }
            return code
        case "county":
            let county = LeadFieldNormalizer.county(value)
            return county.isEmpty ? nil : county
        case "mailing_zip", "property_zip":
            let digits = value.filter(\.isNumber)
            guard value.allSatisfy({ $0.isNumber || $0 == "-" }), digits.count == 5 || digits.count == 9 else {
                throw DomainError.invalid(path, "must be a ZIP code: 5 digits, or ZIP+4 such as 78701-1234")
            }
            return digits.count == 5 ? digits : String(digits.prefix(5)) + "-" + String(digits.suffix(4))
        default: return value
        }
    }

    /// A phone as `lead_phones` stores it.
    struct Phone: Sendable, Hashable {
        var e164: String
        /// mobile, landline, voip or unknown.
        var type: String
        /// Where the caller gave it (errors name `phones[index]`).
        var index = 0
    }

    /// The phones a caller gives for a lead, by the import's rules: E.164 under the NANP rules of
    /// `PhoneNumberNormalizer`, a repeated number kept once (first wins), the order given, at most 3.
    /// Every bad phone is reported, each naming its index and the fix.
    static func phones(_ input: [LeadPhone], path: String) throws -> [Phone] {
        guard input.count <= 3 else {
            throw DomainError.invalid(path, "a lead has at most 3 phones; send up to 3, in the order they should be tried")
        }
        var phones: [Phone] = []
        var violations: [FieldViolation] = []
        for (i, phone) in input.enumerated() {
            let kind = LeadFieldMapping.kind(phone.type)
            if kind == nil, phone.type != .unspecified {
                violations.append(
                    FieldViolation(
                        field: "\(path)[\(i)].type",
                        description: "must be PHONE_TYPE_MOBILE, PHONE_TYPE_LANDLINE, PHONE_TYPE_VOIP or unspecified"
                    ))
            }
            switch PhoneNumberNormalizer.normalize(phone.phone) {
            case .failure(let reason):
                violations.append(
                    FieldViolation(field: "\(path)[\(i)].phone", description: "\(reason.rawValue); give a US number such as (512) 867-5309")
                )
            case .success(let e164):
                if !phones.contains(where: { $0.e164 == e164 }) {
                    phones.append(Phone(e164: e164, type: kind?.rawValue ?? "unknown", index: i))
                }
            }
        }
        if !violations.isEmpty { throw DomainError.invalid(violations) }
        return phones
    }

    static func acreage(_ raw: String, path: String) throws -> String? {
        let value = raw.trimmingCharacters(in: .whitespaces)
        guard !value.isEmpty else { return nil }
        guard let acres = Double(value), acres >= 0, acres < 100_000_000, value.allSatisfy({ $0.isNumber || $0 == "." }) else {
            throw DomainError.invalid(path, "must be a decimal number of acres from 0 to 99999999, e.g. 12.5")
        }
        return value
    }

    static func customFields(_ fields: [String: String], path: String) throws -> String {
        guard fields.count <= 100 else { throw DomainError.invalid(path, "at most 100 custom fields") }
        for (key, value) in fields where key.isEmpty || key.count > 100 || value.utf8.count > 10_000 {
            throw DomainError.invalid("\(path).\(key)", "keys are 1 to 100 characters and values at most 10,000 bytes")
        }
        return CarrierConnectionRecords.json(fields)
    }

    static func score(_ score: Int32, path: String) throws -> Int32 {
        guard (0...100).contains(score) else { throw DomainError.invalid(path, "must be between 0 and 100") }
        return score
    }

    static func statusText(_ status: LeadStatus, path: String) throws -> String {
        if status == .unspecified { return "new" }
        guard let text = statuses.first(where: { $0.0 == status })?.1 else {
            throw DomainError.invalid(path, "must be a LeadStatus such as LEAD_STATUS_NEW")
        }
        return text
    }

    // MARK: Filters

    /// The WHERE conditions of a filter over `leads l` (true when empty).
    static func conditions(_ filter: LeadFilter?, path: String = "filter") throws -> SQL {
        guard let filter else { return "true" }
        var parts: [SQL] = []
        if !filter.counties.isEmpty {
            parts.append("lower(l.county) = ANY(\(filter.counties.map { LeadFieldNormalizer.county($0).lowercased() }))")
        }
        if !filter.states.isEmpty {
            let codes = try filter.states.enumerated().map { i, state in
                guard let code = LeadFieldNormalizer.stateCode(state) else {
                    throw DomainError.invalid("\(path).states[\(i)]", "must be a US state's USPS code or name, e.g. TX")
                }
                return code
            }
            parts.append("l.property_state = ANY(\(codes))")
        }
        func ids(_ values: [String], _ name: String) throws -> [String] {
            guard values.count <= 100 else { throw DomainError.invalid("\(path).\(name)", "at most 100 ids") }
            return try values.enumerated().map { i, id in try IdentityRecords.id(id, field: "\(path).\(name)[\(i)]").text }
        }
        if !filter.anyTagIds.isEmpty {
            let tags = try ids(filter.anyTagIds, "any_tag_ids")
            parts.append("EXISTS (SELECT 1 FROM lead_tags lt WHERE lt.lead_id = l.id AND lt.tag_id = ANY(\(tags)::uuid[]))")
        }
        if !filter.allTagIds.isEmpty {
            let tags = Array(Set(try ids(filter.allTagIds, "all_tag_ids")))
            parts.append(
                "(SELECT count(*) FROM lead_tags lt WHERE lt.lead_id = l.id AND lt.tag_id = ANY(\(tags)::uuid[])) = \(tags.count)")
        }
        switch filter.consentStatus {
        case .unspecified: break
        case .unknown, .granted, .revoked:
            let text = filter.consentStatus == .unknown ? "unknown" : filter.consentStatus == .granted ? "granted" : "revoked"
            parts.append("EXISTS (SELECT 1 FROM lead_phones p WHERE p.lead_id = l.id AND p.consent_status = \(text))")
        default: throw DomainError.invalid("\(path).consent_status", "must be a ConsentStatus such as CONSENT_STATUS_GRANTED")
        }
        if let min = filter.minScore { parts.append("l.score >= \(try score(min, path: "\(path).min_score"))") }
        if let max = filter.maxScore { parts.append("l.score <= \(try score(max, path: "\(path).max_score"))") }
        if let replied = filter.hasReplied {
            parts.append(
                "\(unsafeRaw: replied ? "" : "NOT ")EXISTS (SELECT 1 FROM messages m WHERE m.lead_id = l.id AND m.direction = 'inbound')")
        }
        if let after = filter.createdAfter {
            parts.append("l.created_at >= \(micros(after)) * interval '1 microsecond' + 'epoch'::timestamptz")
        }
        if let before = filter.createdBefore {
            parts.append("l.created_at < \(micros(before)) * interval '1 microsecond' + 'epoch'::timestamptz")
        }
        if !filter.listID.isEmpty {
            let list = try IdentityRecords.id(filter.listID, field: "\(path).list_id")
            parts.append("EXISTS (SELECT 1 FROM lead_list_members lm WHERE lm.lead_id = l.id AND lm.list_id = \(list))")
        }
        return parts.isEmpty ? "true" : SQL.join(parts, separator: " AND ")
    }

    static func micros(_ t: Google_Protobuf_Timestamp) -> Int64 { t.seconds * 1_000_000 + Int64(t.nanos / 1000) }

    /// Checks that every id names a row of `table` in the caller's org; NOT_FOUND otherwise.
    static func requireAll(_ tx: Transaction, table: String, ids: [String], field: String, what: String) async throws {
        let found = try await tx.query(
            "SELECT count(*) AS n FROM \(identifier: table) WHERE id = ANY(\(ids)::uuid[])", prepared: false
        ).one().decode("n", as: Int.self)
        guard found == ids.count else {
            throw DomainError(.notFound, "\(field): \(ids.count - found) of the \(ids.count) \(what) were not found")
        }
    }
}
