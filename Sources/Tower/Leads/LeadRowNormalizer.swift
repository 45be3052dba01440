import Foundation
import TowerProtoRuntime

/// Turns one row of an imported file into clean lead values and the problems found, following a
/// `LeadImportPlan`. Pure: the importer writes the result to its staging table.
public struct LeadRowNormalizer: Sendable {
    public let plan: LeadImportPlan

    public init(plan: LeadImportPlan) { self.plan = plan }

    /// One problem in one row: the column's header ("" for the whole row) and what happened.
    public struct Problem: Sendable, Hashable {
        public var column: String
        public var reason: String
    }

    public struct Phone: Sendable, Hashable {
        public var e164: String
        /// lead_phones.phone_type: mobile, landline, voip or unknown.
        public var type: String
    }

    /// A normalised row. Text fields are nil when empty.
    public struct Row: Sendable {
        public var firstName, lastName, ownerName: String?
        public var mailingAddress, mailingCity, mailingState, mailingZip: String?
        public var propertyAddress, propertyCity, propertyState, propertyZip: String?
        public var county, apn: String?
        /// Decimal text, e.g. "12.5".
        public var acreage: String?
        public var customFields: [(String, String)] = []
        /// Distinct valid phones, in column order, at most 3.
        public var phones: [Phone] = []
        public var consentSource: String?
        /// ISO 8601, e.g. "2024-05-01T00:00:00Z".
        public var consentTime: String?
        public var problems: [Problem] = []

        /// Imported only with at least one phone that can receive a text.
        public var isValid: Bool { !phones.isEmpty }
    }

    /// Whether every cell is blank: such rows (and blank lines) are skipped, not counted.
    public static func isBlank(_ cells: [String]) -> Bool {
        cells.allSatisfy(isBlank)
    }

    static func isBlank(_ cell: String) -> Bool {
        var ascii = true
        for byte in cell.utf8 {
            if byte >= 0x80 {
                ascii = false
                break
            }
            if !ASCIIText.isSpace(byte) { return false }
        }
        return ascii || cell.allSatisfy(\.isWhitespace)
    }

    public func normalize(_ cells: [String]) -> Row {
        var row = Row()
        if cells.count > plan.columns.count {
            let extra = cells[plan.columns.count...].contains { !Self.isBlank($0) }
            if extra {
                row.problems.append(
                    Problem(
                        column: "",
                        reason:
                            "the row has \(cells.count) cells but the header row has \(plan.columns.count); the extra cells were ignored"))
            }
        }
        var rawPhones: [(slot: Int, value: String, header: String, kind: ColumnMapping.PhoneKind?)] = []
        // Type cells of slots 1-3: the last column mapped to a slot wins.
        var typeCells: (String?, String?, String?) = (nil, nil, nil)
        for (index, column) in plan.columns.enumerated() {
            guard index < cells.count, !cells[index].isEmpty else { continue }
            switch column.target {
            case .ignore: break
            case .custom(let key):
                // Free text keeps its inner line breaks and spacing.
                let text = Self.trimmed(cells[index])
                if !text.isEmpty { row.customFields.append((key, text)) }
            case .field(let field, let kind):
                let value = Self.collapsed(cells[index])
                guard !value.isEmpty else { continue }
                switch field {
                case .firstName: row.firstName = LeadFieldNormalizer.name(value)
                case .lastName: row.lastName = LeadFieldNormalizer.name(value)
                case .fullName: row.ownerName = LeadFieldNormalizer.name(value)
                case .phone1: rawPhones.append((1, value, column.header, kind))
                case .phone2: rawPhones.append((2, value, column.header, kind))
                case .phone3: rawPhones.append((3, value, column.header, kind))
                case .phone1Type: typeCells.0 = value
                case .phone2Type: typeCells.1 = value
                case .phone3Type: typeCells.2 = value
                case .email: row.customFields.append(("email", value.lowercased()))
                case .mailingAddress: row.mailingAddress = value
                case .mailingCity: row.mailingCity = LeadFieldNormalizer.name(value)
                case .mailingState: row.mailingState = state(value, column.header, &row.problems)
                case .mailingZip: row.mailingZip = zip(value, column.header, &row.problems)
                case .propertyAddress: row.propertyAddress = value
                case .propertyCity: row.propertyCity = LeadFieldNormalizer.name(value)
                case .propertyState: row.propertyState = state(value, column.header, &row.problems)
                case .propertyZip: row.propertyZip = zip(value, column.header, &row.problems)
                case .county:
                    let county = LeadFieldNormalizer.county(value)
                    row.county = county.isEmpty ? nil : county
                case .apn: row.apn = value
                case .acreage: row.acreage = acreage(value, column.header, &row.problems)
                case .consentSource: row.consentSource = value
                case .consentTimestamp: row.consentTime = timestamp(value, column.header, &row.problems)
                }
            }
        }
        // Columns usually come in slot order already.
        if !Swift.zip(rawPhones, rawPhones.dropFirst()).allSatisfy({ $0.slot <= $1.slot }) { rawPhones.sort { $0.slot < $1.slot } }
        for phone in rawPhones {
            switch PhoneNumberNormalizer.normalize(phone.value) {
            case .failure(let reason):
                row.problems.append(Problem(column: phone.header, reason: "phone \"\(phone.value)\" rejected: \(reason.rawValue)"))
            case .success(let e164):
                guard !row.phones.contains(where: { $0.e164 == e164 }) else { continue }
                let typeCell = phone.slot == 1 ? typeCells.0 : phone.slot == 2 ? typeCells.1 : typeCells.2
                let kind = typeCell.flatMap(ColumnMapping.phoneKind(value:)) ?? phone.kind
                row.phones.append(Phone(e164: e164, type: kind?.rawValue ?? "unknown"))
            }
        }
        if row.phones.isEmpty {
            row.problems.append(Problem(column: "", reason: "no phone that can receive a text; the row was not imported"))
        }
        return row
    }

    static func collapsed(_ raw: String) -> String {
        ASCIIText.isASCII(raw) ? ASCIIText.collapsed(raw, separator: ASCIIText.isSpace) : collapsedByCharacters(raw)
    }

    static func collapsedByCharacters(_ raw: String) -> String {
        raw.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    static func trimmed(_ raw: String) -> String {
        ASCIIText.isASCII(raw) ? String(ASCIIText.trimmed(raw)) : trimmedByCharacters(raw)
    }

    static func trimmedByCharacters(_ raw: String) -> String {
        raw.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func state(_ value: String, _ header: String, _ problems: inout [Problem]) -> String? {
        if let code = LeadFieldNormalizer.stateCode(value) { return code }
        problems.append(Problem(column: header, reason: "\"\(value)\" is not a US state name or USPS code; left empty"))
        return nil
    }

    func zip(_ value: String, _ header: String, _ problems: inout [Problem]) -> String? {
        if ASCIIText.isASCII(value), let zip = Self.asciiZIP(value) { return zip }
        return zipByCharacters(value, header, &problems)
    }

    /// `zip` for any text, by `Character`; the one that words the problem.
    func zipByCharacters(_ value: String, _ header: String, _ problems: inout [Problem]) -> String? {
        let digits = value.filter(\.isNumber)
        let shapeOK = value.allSatisfy { $0.isNumber || $0 == "-" || $0 == " " }
        switch digits.count {
        case 5 where shapeOK: return digits
        case 9 where shapeOK: return String(digits.prefix(5)) + "-" + String(digits.suffix(4))
        // Spreadsheets drop the leading zero of New England ZIP codes.
        case 4 where shapeOK && value.count == 4: return "0" + digits
        default:
            problems.append(Problem(column: header, reason: "\"\(value)\" is not a ZIP code (5 digits, or ZIP+4); left empty"))
            return nil
        }
    }

    /// The ZIP code in ASCII `value` when it is one (the general path reports the problem).
    static func asciiZIP(_ value: String) -> String? {
        var digits = 0
        for byte in value.utf8 {
            if ASCIIText.isDigit(byte) {
                digits += 1
            } else if byte != UInt8(ascii: "-"), byte != 0x20 {
                return nil
            }
        }
        let utf8 = value.utf8
        // Four digits alone: spreadsheets drop the leading zero of New England ZIP codes.
        guard digits == 5 || digits == 9 || (digits == 4 && utf8.count == 4) else { return nil }
        return String(unsafeUninitializedCapacity: 10) { out in
            var count = 0
            if digits == 4 {
                out[0] = UInt8(ascii: "0")
                count = 1
            }
            for byte in utf8 where ASCIIText.isDigit(byte) {
                if count == 5 {
                    out[count] = UInt8(ascii: "-")
                    count += 1
                }
                out[count] = byte
                count += 1
            }
            return count
        }
    }

    /// "12.5", "12.5 ac", "1,250 acres" -> decimal text; numeric(12,4) bounds.
    func acreage(_ value: String, _ header: String, _ problems: inout [Problem]) -> String? {
        if ASCIIText.isASCII(value), let acres = Self.asciiAcreage(value) { return acres }
        return acreageByCharacters(value, header, &problems)
    }

    /// `acreage` for any text, by `Character`; the one that words the problem.
    func acreageByCharacters(_ value: String, _ header: String, _ problems: inout [Problem]) -> String? {
        var text = Substring(value.lowercased().replacingOccurrences(of: ",", with: ""))
        for suffix in ["acres", "acre", "ac"] where text.hasSuffix(suffix) {
            text = text.dropLast(suffix.count)
            break
        }
        let number = text.trimmingCharacters(in: .whitespaces)
        guard let acres = Double(number), acres.isFinite, number.first != "+",
            number.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" })
        else {
            problems.append(Problem(column: header, reason: "\"\(value)\" is not a number of acres; left empty"))
            return nil
        }
        guard acres >= 0, acres < 100_000_000 else {
            problems.append(Problem(column: header, reason: "\(value) acres is out of range (0 to 99,999,999); left empty"))
            return nil
        }
        return number
    }

    /// The acreage in ASCII `value` when it is a valid one (the general path reports problems).
    static func asciiAcreage(_ value: String) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(value.utf8.count)
        for byte in value.utf8 where byte != UInt8(ascii: ",") { bytes.append(ASCIIText.lower(byte)) }
        for suffix in ["acres", "acre", "ac"]
        where bytes.count >= suffix.utf8.count && bytes.suffix(suffix.utf8.count).elementsEqual(suffix.utf8) {
            bytes.removeLast(suffix.utf8.count)
            break
        }
        var start = 0
        var end = bytes.count
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        guard start < end, bytes[start..<end].allSatisfy({ ASCIIText.isDigit($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") })
        else { return nil }
        let number = String(decoding: bytes[start..<end], as: UTF8.self)
        guard let acres = Double(number), acres.isFinite, acres >= 0, acres < 100_000_000 else { return nil }
        return number
    }

    /// RFC 3339, "2024-05-01", "05/01/2024" or "5/1/24"; dates are midnight UTC.
    func timestamp(_ value: String, _ header: String, _ problems: inout [Problem]) -> String? {
        if let date = try? Date(value, strategy: .iso8601) { return date.formatted(.iso8601) }
        var parts = value.split(separator: "/").map(String.init)
        if parts.count != 3 { parts = value.split(separator: "-").map(String.init) }
        if parts.count == 3, let a = Int(parts[0]), let b = Int(parts[1]), var c = Int(parts[2]) {
            let (year, month, day) =
                parts[0].count == 4
                ? (a, b, c)
                : ({
                    if c < 100 { c += 2000 }; return (c, a, b)
                }())
            var components = DateComponents()
            components.year = year
            components.month = month
            components.day = day
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            if (1...12).contains(month), (1...31).contains(day), let date = calendar.date(from: components),
                calendar.component(.day, from: date) == day
            {
                return date.formatted(.iso8601)
            }
        }
        problems.append(
            Problem(
                column: header,
                reason: "\"\(value)\" is not a date or time (use 2024-05-01 or RFC 3339); the upload's consent time was used"))
        return nil
    }

    /// The row's custom fields as a JSON object (first value wins for a repeated key).
    static func customFieldsJSON(_ fields: [(String, String)]) -> String {
        var seen: Set<String> = []
        var members: [(String, JSONValue)] = []
        for (key, value) in fields where seen.insert(key).inserted { members.append((key, .string(value))) }
        return JSONValue.object(members).serialized()
    }

    /// The row's problems as a JSON array of [column, reason] pairs.
    static func problemsJSON(_ problems: [Problem]) -> String {
        JSONValue.array(problems.map { .array([.string($0.column), .string($0.reason)]) }).serialized()
    }
}
