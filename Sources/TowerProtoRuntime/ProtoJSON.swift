/// proto3 canonical JSON conversions for scalar fields, shared by every generated message.
/// Error messages name the field (its JSON name) and what was expected, never the value.
public enum ProtoJSON {
    // MARK: encoding

    public static func int32<T: FixedWidthInteger>(_ v: T) -> JSONValue { .number(String(v)) }
    /// 64-bit integers are strings in proto3 JSON (JavaScript numbers lose precision past 2^53).
    public static func int64<T: FixedWidthInteger>(_ v: T) -> JSONValue { .string(String(v)) }
    public static func double<T: BinaryFloatingPoint & LosslessStringConvertible>(_ v: T) -> JSONValue {
        if v.isNaN { return .string("NaN") }
        if v.isInfinite { return .string(v < 0 ? "-Infinity" : "Infinity") }
        if v == v.rounded(), abs(v) < 1e15 { return .number(String(Int64(v))) }
        return .number(String(v))
    }
    public static func bytes(_ v: [UInt8]) -> JSONValue { .string(Base64.encode(v)) }

    /// Map keys are always strings in JSON.
    public static func mapKey<K: LosslessStringConvertible>(_ k: K) -> String { String(k) }

    // MARK: decoding

    static func numberText(_ v: JSONValue, field: String) throws(ProtoDecodingError) -> String {
        switch v {
        case .number(let n): return n
        case .string(let s): return s
        default: throw ProtoDecodingError(message: "field \(field): expected a number")
        }
    }

    static func integer<T: FixedWidthInteger>(_ v: JSONValue, field: String, as: T.Type) throws(ProtoDecodingError) -> T {
        let text = try numberText(v, field: field)
        if let exact = T(text) { return exact }
        // Integers may be written in exponent or fractional form ("1e3", "5.0") as long as they are whole.
        if let d = Double(text), d == d.rounded(), d >= Double(T.min), d <= Double(T.max), abs(d) < 9.007_199_254_740_992e15 {
            return T(d)
        }
        throw ProtoDecodingError(message: "field \(field): expected an integer in range \(T.min)...\(T.max)")
    }

    public static func int32(_ v: JSONValue, field: String) throws(ProtoDecodingError) -> Int32 {
        try integer(v, field: field, as: Int32.self)
    }
    public static func uint32(_ v: JSONValue, field: String) throws(ProtoDecodingError) -> UInt32 {
        try integer(v, field: field, as: UInt32.self)
    }
    public static func int64(_ v: JSONValue, field: String) throws(ProtoDecodingError) -> Int64 {
        try integer(v, field: field, as: Int64.self)
    }
    public static func uint64(_ v: JSONValue, field: String) throws(ProtoDecodingError) -> UInt64 {
        try integer(v, field: field, as: UInt64.self)
    }

    public static func double(_ v: JSONValue, field: String) throws(ProtoDecodingError) -> Double {
        let text = try numberText(v, field: field)
        switch text {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default:
            guard let d = Double(text) else { throw ProtoDecodingError(message: "field \(field): expected a number") }
            return d
        }
    }

    public static func float(_ v: JSONValue, field: String) throws(ProtoDecodingError) -> Float {
        Float(try double(v, field: field))
    }

    public static func bool(_ v: JSONValue, field: String) throws(ProtoDecodingError) -> Bool {
        guard case .bool(let b) = v else { throw ProtoDecodingError(message: "field \(field): expected true or false") }
        return b
    }

    public static func string(_ v: JSONValue, field: String) throws(ProtoDecodingError) -> String {
        guard case .string(let s) = v else { throw ProtoDecodingError(message: "field \(field): expected a string") }
        return s
    }

    public static func bytes(_ v: JSONValue, field: String) throws(ProtoDecodingError) -> [UInt8] {
        guard case .string(let s) = v, let bytes = Base64.decode(s) else {
            throw ProtoDecodingError(message: "field \(field): expected base64-encoded bytes")
        }
        return bytes
    }

    public static func array(_ v: JSONValue, field: String) throws(ProtoDecodingError) -> [JSONValue] {
        switch v {
        case .array(let items): return items
        case .null: return []
        default: throw ProtoDecodingError(message: "field \(field): expected an array")
        }
    }

    public static func object(_ v: JSONValue, field: String) throws(ProtoDecodingError) -> [(String, JSONValue)] {
        switch v {
        case .object(let members): return members
        case .null: return []
        default: throw ProtoDecodingError(message: "field \(field): expected an object")
        }
    }

    /// Parses a map key written as a JSON string into the key's type.
    public static func mapKey<K>(_ key: String, field: String, parse: (String) -> K?) throws(ProtoDecodingError) -> K {
        guard let k = parse(key) else { throw ProtoDecodingError(message: "field \(field): map key is not a valid \(K.self)") }
        return k
    }

    public static func unknownField(_ name: String, in message: String) -> ProtoDecodingError {
        ProtoDecodingError(message: "\(message) has no field named \"\(name)\"")
    }

    public static func expectedObject(_ message: String) -> ProtoDecodingError {
        ProtoDecodingError(message: "\(message): expected a JSON object")
    }
}
