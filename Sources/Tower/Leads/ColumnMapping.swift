/// Suggests which lead field each column of an imported file holds, from its header
/// ("Owner First Name", "Mailing State", "Phone 1", "Parcel #"…). The user confirms or corrects it.
public enum ColumnMapping {
    public enum Field: String, Sendable, Hashable, CaseIterable {
        case firstName = "first_name", lastName = "last_name", fullName = "full_name"
        case phone1 = "phone_1", phone2 = "phone_2", phone3 = "phone_3"
        /// The line type of phone 1, 2 or 3, one value per row ("mobile", "landline"...).
        case phone1Type = "phone_1_type", phone2Type = "phone_2_type", phone3Type = "phone_3_type"
        case email
        case mailingAddress = "mailing_address", mailingCity = "mailing_city", mailingState = "mailing_state", mailingZip = "mailing_zip"
        case propertyAddress = "property_address", propertyCity = "property_city", propertyState = "property_state", propertyZip =
            "property_zip"
        case county, apn, acreage
        case consentSource = "consent_source", consentTimestamp = "consent_timestamp"
    }

    /// One suggestion per header, in order; nil where nothing fits (kept as a custom field).
    public static func suggest(headers: [String]) -> [Field?] {
        var used: Set<Field> = []
        var phoneCount = 0
        return headers.map { header in
            let h =
                " " + header.lowercased().map { $0.isLetter || $0.isNumber ? $0 : " " }.split(separator: " ").joined(separator: " ") + " "
            func has(_ words: String...) -> Bool { words.contains { h.contains(" \($0) ") } }
            let mailing = has("mailing", "mail", "owner address", "owner city", "owner state", "owner zip")
            var field: Field?
            if has("phone", "cell", "mobile", "tel", "telephone", "wireless", "landline"), has("type", "line type", "kind") {
                // "Phone 2 Type": the type of the phone with that number, else of the last phone seen.
                let types: [Field] = [.phone1Type, .phone2Type, .phone3Type]
                let n = h.split(separator: " ").compactMap({ Int($0) }).first ?? max(phoneCount, 1)
                field = (1...3).contains(n) ? types[n - 1] : nil
            } else if has("phone", "cell", "mobile", "tel", "telephone", "wireless", "landline") {
                let phones: [Field] = [.phone1, .phone2, .phone3]
                if let n = h.split(separator: " ").compactMap({ Int($0) }).first, (1...3).contains(n) {
                    field = phones[n - 1]
                } else if phoneCount < 3 {
                    field = phones.first { !used.contains($0) }
                }
                if field != nil { phoneCount += 1 }
            } else if has("email", "e mail") {
                field = .email
            } else if has("first") {
                field = .firstName
            } else if has("last", "surname") {
                field = .lastName
            } else if has("apn", "parcel", "parcel number", "pin") {
                field = .apn
            } else if has("acreage", "acres", "acre", "lot acres", "lot size") {
                field = .acreage
            } else if has("county") {
                field = .county
            } else if has("consent source", "opt in source", "optin source", "lead source") {
                field = .consentSource
            } else if has("consent date", "opt in date", "consent timestamp", "optin date") {
                field = .consentTimestamp
            } else if has("state", "st") {
                field = mailing ? .mailingState : .propertyState
            } else if has("city") {
                field = mailing ? .mailingCity : .propertyCity
            } else if has("zip", "zipcode", "postal") {
                field = mailing ? .mailingZip : .propertyZip
            } else if has("address", "street", "situs") {
                field = mailing ? .mailingAddress : .propertyAddress
            } else if has("name", "owner", "owner name") {
                field = .fullName
            }
            guard let chosen = field, !used.contains(chosen) else { return nil }
            used.insert(chosen)
            return chosen
        }
    }

    /// A phone's line type as lead_phones stores it.
    public enum PhoneKind: String, Sendable, Hashable {
        case mobile, landline, voip
    }

    /// The line type a phone column's header implies ("Cell Phone", "Landline 1"), if any.
    public static func phoneKind(impliedByHeader header: String) -> PhoneKind? {
        phoneKind(words: header)
    }

    /// A line type written in a cell ("Mobile", "wireless", "LAND LINE", "VoIP"), if recognised.
    public static func phoneKind(value: String) -> PhoneKind? {
        phoneKind(words: value)
    }

    private static func phoneKind(words text: String) -> PhoneKind? {
        var mobile = false
        var landline = false
        var land = false
        var line = false
        var voip = false
        // Called for every phone of every imported row: no set, no array, just the words.
        for word in text.lowercased().split(whereSeparator: { !$0.isLetter }) {
            switch word {
            case "cell", "mobile", "cellular", "wireless": mobile = true
            case "landline", "home", "residential": landline = true
            case "land": land = true
            case "line": line = true
            case "voip": voip = true
            default: break
            }
        }
        if mobile { return .mobile }
        if landline || (land && line) { return .landline }
        return voip ? .voip : nil
    }
}
