import Foundation

/// A value ready to be bound to a `$n` placeholder.
public struct SQLBinding: Sendable, Hashable {
    enum Storage: Sendable, Hashable {
        case null
        case text(String)
        case binary([UInt8])
    }

    let storage: Storage
    /// The parameter's type OID; 0 lets PostgreSQL infer it from context.
    public let typeOID: UInt32

    public static func null(typeOID: UInt32 = 0) -> SQLBinding { SQLBinding(storage: .null, typeOID: typeOID) }
    public static func text(_ value: String, typeOID: UInt32 = 0) -> SQLBinding {
        SQLBinding(storage: .text(value), typeOID: typeOID)
    }
    public static func binary(_ value: [UInt8], typeOID: UInt32) -> SQLBinding {
        SQLBinding(storage: .binary(value), typeOID: typeOID)
    }

    /// The text form, used when the value becomes an array element.
    var textForm: String? {
        switch storage {
        case .null: return nil
        case .text(let text): return text
        case .binary(let bytes): return "\\x" + bytes.hexString
        }
    }
}

/// PostgreSQL type OIDs used by the built-in conformances.
public enum PostgresType {
    public static let unknown: UInt32 = 0
    public static let bool: UInt32 = 16
    public static let bytea: UInt32 = 17
    public static let int8: UInt32 = 20
    public static let int2: UInt32 = 21
    public static let int4: UInt32 = 23
    public static let text: UInt32 = 25
    public static let jsonb: UInt32 = 3802
    public static let float8: UInt32 = 701
    public static let timestamptz: UInt32 = 1184
    public static let uuid: UInt32 = 2950
    public static let boolArray: UInt32 = 1000
    public static let int4Array: UInt32 = 1007
    public static let textArray: UInt32 = 1009
    public static let int8Array: UInt32 = 1016
    public static let float8Array: UInt32 = 1022
    public static let timestamptzArray: UInt32 = 1185
    public static let uuidArray: UInt32 = 2951
}

/// A Swift value that can be bound as a query parameter.
public protocol SQLEncodable: Sendable {
    /// The parameter type OID, used for `NULL`s of this type and for arrays.
    static var sqlTypeOID: UInt32 { get }
    var sqlBinding: SQLBinding { get }
}

/// A Swift value that can be read from a column's text representation.
public protocol SQLDecodable: Sendable {
    /// Decodes the text form; `nil` means the text is not a valid value of this type.
    init?(sqlText: String)
    /// What a SQL `NULL` decodes to; `nil` (the default) means NULL is an error.
    static func decodeSQLNull() -> Self?
}

extension SQLDecodable {
    public static func decodeSQLNull() -> Self? { nil }
}

public typealias SQLCodable = SQLEncodable & SQLDecodable

// MARK: - Optional

extension Optional: SQLEncodable where Wrapped: SQLEncodable {
    public static var sqlTypeOID: UInt32 { Wrapped.sqlTypeOID }
    public var sqlBinding: SQLBinding {
        switch self {
        case .some(let value): return value.sqlBinding
        case .none: return .null(typeOID: Wrapped.sqlTypeOID)
        }
    }
}

extension Optional: SQLDecodable where Wrapped: SQLDecodable {
    public init?(sqlText: String) {
        guard let value = Wrapped(sqlText: sqlText) else { return nil }
        self = .some(value)
    }
    public static func decodeSQLNull() -> Self? { .some(.none) }
}

// MARK: - Scalars

extension String: SQLCodable {
    public static var sqlTypeOID: UInt32 { PostgresType.unknown }
    public var sqlBinding: SQLBinding { .text(self, typeOID: 0) }
    public init?(sqlText: String) { self = sqlText }
}

extension Int: SQLCodable {
    public static var sqlTypeOID: UInt32 { PostgresType.int8 }
    public var sqlBinding: SQLBinding { .text(String(self), typeOID: PostgresType.int8) }
    public init?(sqlText: String) { self.init(sqlText, radix: 10) }
}

extension Int64: SQLCodable {
    public static var sqlTypeOID: UInt32 { PostgresType.int8 }
    public var sqlBinding: SQLBinding { .text(String(self), typeOID: PostgresType.int8) }
    public init?(sqlText: String) { self.init(sqlText, radix: 10) }
}

extension Int32: SQLCodable {
    public static var sqlTypeOID: UInt32 { PostgresType.int4 }
    public var sqlBinding: SQLBinding { .text(String(self), typeOID: PostgresType.int4) }
    public init?(sqlText: String) { self.init(sqlText, radix: 10) }
}

extension Double: SQLCodable {
    public static var sqlTypeOID: UInt32 { PostgresType.float8 }
    public var sqlBinding: SQLBinding {
        let text: String
        if isNaN {
            text = "NaN"
        } else if self == .infinity {
            text = "Infinity"
        } else if self == -.infinity {
            text = "-Infinity"
        } else {
            text = "\(self)"
        }
        return .text(text, typeOID: PostgresType.float8)
    }
    public init?(sqlText: String) {
        switch sqlText {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default: self.init(sqlText)
        }
    }
}

extension Bool: SQLCodable {
    public static var sqlTypeOID: UInt32 { PostgresType.bool }
    public var sqlBinding: SQLBinding { .text(self ? "t" : "f", typeOID: PostgresType.bool) }
    public init?(sqlText: String) {
        switch sqlText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

extension UUID: SQLCodable {
    public static var sqlTypeOID: UInt32 { PostgresType.uuid }
    public var sqlBinding: SQLBinding { .text(uuidString.lowercased(), typeOID: PostgresType.uuid) }
    public init?(sqlText: String) { self.init(uuidString: sqlText) }
}

extension Date: SQLCodable {
    public static var sqlTypeOID: UInt32 { PostgresType.timestamptz }
    public var sqlBinding: SQLBinding { .text(PostgresTimestamp.format(self), typeOID: PostgresType.timestamptz) }
    public init?(sqlText: String) {
        guard let date = PostgresTimestamp.parse(sqlText) else { return nil }
        self = date
    }
}

// MARK: - Arrays and bytea

/// An element of a PostgreSQL array parameter. `UInt8` is special: `[UInt8]` is `bytea`.
public protocol SQLArrayElement: SQLCodable {
    static var sqlArrayTypeOID: UInt32 { get }
}

extension String: SQLArrayElement { public static var sqlArrayTypeOID: UInt32 { PostgresType.textArray } }
extension Int: SQLArrayElement { public static var sqlArrayTypeOID: UInt32 { PostgresType.int8Array } }
extension Int64: SQLArrayElement { public static var sqlArrayTypeOID: UInt32 { PostgresType.int8Array } }
extension Int32: SQLArrayElement { public static var sqlArrayTypeOID: UInt32 { PostgresType.int4Array } }
extension Double: SQLArrayElement { public static var sqlArrayTypeOID: UInt32 { PostgresType.float8Array } }
extension Bool: SQLArrayElement { public static var sqlArrayTypeOID: UInt32 { PostgresType.boolArray } }
extension UUID: SQLArrayElement { public static var sqlArrayTypeOID: UInt32 { PostgresType.uuidArray } }
extension Date: SQLArrayElement { public static var sqlArrayTypeOID: UInt32 { PostgresType.timestamptzArray } }

extension UInt8: SQLArrayElement {
    public static var sqlTypeOID: UInt32 { PostgresType.int2 }
    public static var sqlArrayTypeOID: UInt32 { PostgresType.bytea }
    public var sqlBinding: SQLBinding { .text(String(self), typeOID: PostgresType.int2) }
    public init?(sqlText: String) { self.init(sqlText, radix: 10) }
}

extension Array: SQLEncodable where Element: SQLArrayElement {
    public static var sqlTypeOID: UInt32 { Element.sqlArrayTypeOID }
    public var sqlBinding: SQLBinding {
        // Test the element type, not the value: an empty array of any type casts to [UInt8].
        if Element.self == UInt8.self, let bytes = self as? [UInt8] { return .binary(bytes, typeOID: PostgresType.bytea) }
        let elements = map { element -> String in
            guard let text = element.sqlBinding.textForm else { return "NULL" }
            return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                + "\""
        }
        return .text("{" + elements.joined(separator: ",") + "}", typeOID: Element.sqlArrayTypeOID)
    }
}

extension Array: SQLDecodable where Element: SQLArrayElement {
    public init?(sqlText: String) {
        if Element.self == UInt8.self {
            guard let bytes = [UInt8](byteaText: sqlText) as? [Element] else { return nil }
            self = bytes
            return
        }
        guard let items = PostgresArrayText.parse(sqlText) else { return nil }
        var result: [Element] = []
        result.reserveCapacity(items.count)
        for item in items {
            guard let item, let value = Element(sqlText: item) else { return nil }
            result.append(value)
        }
        self = result
    }
}

extension [UInt8] {
    /// Decodes `bytea` in PostgreSQL's hex output format (`\x0a1b…`).
    init?(byteaText text: String) {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else {
            return nil
        }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self = bytes
    }

    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(count * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Parses the text form of a one-dimensional PostgreSQL array: `{a,"b c",NULL}`.
enum PostgresArrayText {
    static func parse(_ text: String) -> [String?]? {
        var chars = Array(text.unicodeScalars)
        // Arrays with explicit bounds ("[0:1]={…}") are not produced for our columns.
        guard chars.first == "{", chars.last == "}" else { return nil }
        chars.removeFirst()
        chars.removeLast()
        if chars.isEmpty { return [] }
        var items: [String?] = []
        var index = 0
        while index <= chars.count {
            var item = ""
            var quoted = false
            if index < chars.count, chars[index] == "\"" {
                quoted = true
                index += 1
                while index < chars.count, chars[index] != "\"" {
                    if chars[index] == "\\", index + 1 < chars.count { index += 1 }
                    item.unicodeScalars.append(chars[index])
                    index += 1
                }
                index += 1  // closing quote
            } else {
                while index < chars.count, chars[index] != "," {
                    item.unicodeScalars.append(chars[index])
                    index += 1
                }
            }
            items.append(!quoted && item == "NULL" ? nil : item)
            index += 1  // the comma
        }
        return items
    }
}

/// `timestamptz` text in the ISO DateStyle, both ways, without a DateFormatter.
enum PostgresTimestamp {
    static func format(_ date: Date) -> String {
        let totalMicros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = totalMicros / 1_000_000
        var micros = totalMicros % 1_000_000
        if micros < 0 {
            micros += 1_000_000
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = civil(fromDays: days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(micros, 6))Z"
    }

    /// Parses `2024-01-02 03:04:05.123456+00`, `…+05:30`, `…-03`, or a bare date `2024-01-02`.
    static func parse(_ text: String) -> Date? {
        let s = Array(text.utf8)
        var i = 0
        func number(_ width: Int) -> Int64? {
            guard i + width <= s.count else { return nil }
            var value: Int64 = 0
            for _ in 0..<width {
                let c = s[i]
                guard c >= 48, c <= 57 else { return nil }
                value = value * 10 + Int64(c - 48)
                i += 1
            }
            return value
        }
        func expect(_ c: Character) -> Bool {
            guard i < s.count, s[i] == c.asciiValue! else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2) else {
            return nil
        }
        var seconds = days(fromCivil: year, month, day) * 86_400
        var fraction = 0.0
        if i < s.count, s[i] == UInt8(ascii: " ") || s[i] == UInt8(ascii: "T") {
            i += 1
            guard let hour = number(2), expect(":"), let minute = number(2), expect(":"), let second = number(2) else {
                return nil
            }
            seconds += hour * 3600 + minute * 60 + second
            if i < s.count, s[i] == UInt8(ascii: ".") {
                i += 1
                var scale = 0.1
                while i < s.count, s[i] >= 48, s[i] <= 57 {
                    fraction += Double(s[i] - 48) * scale
                    scale /= 10
                    i += 1
                }
            }
            if i < s.count {
                if s[i] == UInt8(ascii: "Z") {
                    i += 1
                } else {
                    let sign: Int64 = s[i] == UInt8(ascii: "-") ? -1 : 1
                    guard s[i] == UInt8(ascii: "+") || s[i] == UInt8(ascii: "-") else { return nil }
                    i += 1
                    guard let offsetHours = number(2) else { return nil }
                    var offset = offsetHours * 3600
                    if expect(":") {
                        guard let offsetMinutes = number(2) else { return nil }
                        offset += offsetMinutes * 60
                        if expect(":") {
                            guard let offsetSeconds = number(2) else { return nil }
                            offset += offsetSeconds
                        }
                    }
                    seconds -= sign * offset
                }
            }
        }
        guard i == s.count else { return nil }
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    // Howard Hinnant's civil-from-days and days-from-civil algorithms (proleptic Gregorian).
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
