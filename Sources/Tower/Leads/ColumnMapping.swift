/// Suggests which lead field each column of an imported file holds, from its header
/// ("Owner First Name", "Mailing State", "Phone 1", "Parcel #"…). The user confirms or corrects it.
public enum ColumnMapping {
    public enum Field: String, Sendable, Hashable, CaseIterable {
        case firstName = "first_name", lastName = "last_name", fullName = "full_name"
        case phone1 = "phone_1", phone2 = "phone_2", phone3 = "phone_3"
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
            if has("phone", "cell", "mobile", "tel", "telephone", "wireless") {
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
}
