import TowerStore

/// The values a lead gives a template's variables: its names, county, state, property and
/// mailing fields, acreage, APN, assigned agent and first phone. Read under the caller's tenant,
/// so another org's lead is simply not there. The org's `brand` is added by the caller.
///
/// Batch readers (queueing a campaign) select `columns` from `leads l LEFT JOIN users u ON
/// u.id = l.assigned_user_id` themselves and map each row with `values(_:)`.
enum LeadTemplateValues {
    static let columns = """
        l.first_name, l.last_name, l.owner_name, l.county, coalesce(l.property_state, l.mailing_state) AS state,
        l.property_address, l.property_city, l.mailing_city, l.acreage::text AS acreage, l.apn, u.display_name AS agent_name,
        (SELECT p.phone::text FROM lead_phones p WHERE p.lead_id = l.id ORDER BY p.position LIMIT 1) AS phone
        """

    /// The lead's values by variable name (blank fields left out), or nil when the lead is not
    /// visible in this transaction's org.
    static func load(_ tx: Transaction, leadID: UUIDText) async throws -> [String: String]? {
        let row = try await tx.query(
            "SELECT \(unsafeRaw: columns) FROM leads l LEFT JOIN users u ON u.id = l.assigned_user_id WHERE l.id = \(leadID)"
        ).firstRow
        return try row.map(values)
    }

    /// One row selected with `columns`, by variable name; blank fields are left out.
    static func values(_ row: Row) throws -> [String: String] {
        func field(_ name: String) throws -> String? {
            guard let value = try row.decode(name, as: String?.self)?.trimmed(" "), !value.isEmpty else { return nil }
            return value
        }
        var values: [String: String] = [:]
        for name in [
            "first_name", "last_name", "county", "state", "property_address", "property_city", "mailing_city", "apn", "agent_name",
        ] {
            values[name] = try field(name)
        }
        // "Rosa Núñez" from the name fields, else the owner of record ("Núñez Family Trust").
        if let first = values["first_name"] {
            values["full_name"] = values["last_name"].map { "\(first) \($0)" } ?? first
        } else {
            values["full_name"] = try field("owner_name") ?? values["last_name"]
        }
        values["acreage"] = try field("acreage").map(acreage)
        values["phone"] = try field("phone").map(displayPhone)
        return values
    }

    /// `12.5000` -> `12.5`, `40.0000` -> `40`: acreage as people write it.
    static func acreage(_ numeric: String) -> String {
        guard numeric.contains(".") else { return numeric }
        var s = Substring(numeric)
        while s.last == "0" { s = s.dropLast() }
        if s.last == "." { s = s.dropLast() }
        return String(s)
    }

    /// `+15125550100` -> `(512) 555-0100`; other numbers stay in E.164.
    static func displayPhone(_ e164: String) -> String {
        let digits = Array(e164.dropFirst(2))
        guard e164.hasPrefix("+1"), digits.count == 10 else { return e164 }
        return "(\(String(digits[0..<3]))) \(String(digits[3..<6]))-\(String(digits[6..<10]))"
    }
}
