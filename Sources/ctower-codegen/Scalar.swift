/// The value kind of a field (or of a map key/value), and the code for each conversion it needs.
enum Scalar {
    case double, float, int64, uint64, int32, uint32, bool, string, bytes
    case enumeration(TypeInfo)
    case message(TypeInfo)

    init(_ field: FieldDef, registry: TypeRegistry) {
        switch field.type {
        case .double: self = .double
        case .float: self = .float
        case .int64, .sint64, .sfixed64: self = .int64
        case .uint64, .fixed64: self = .uint64
        case .int32, .sint32, .sfixed32: self = .int32
        case .uint32, .fixed32: self = .uint32
        case .bool: self = .bool
        case .string: self = .string
        case .bytes: self = .bytes
        case .enumeration: self = .enumeration(registry[field.typeName])
        case .message, .group: self = .message(registry[field.typeName])
        }
    }

    var swiftType: String {
        switch self {
        case .double: "Double"
        case .float: "Float"
        case .int64: "Int64"
        case .uint64: "UInt64"
        case .int32: "Int32"
        case .uint32: "UInt32"
        case .bool: "Bool"
        case .string: "String"
        case .bytes: "[UInt8]"
        case .enumeration(let t), .message(let t): t.swiftName
        }
    }

    var defaultValue: String {
        switch self {
        case .double, .float, .int64, .uint64, .int32, .uint32: "0"
        case .bool: "false"
        case .string: "\"\""
        case .bytes: "[]"
        case .enumeration(let t): "." + Naming.enumCaseNames(enumName: t.enumeration!.name, values: t.enumeration!.values.map(\.name))[0]
        case .message(let t): "\(t.swiftName)()"
        }
    }

    /// Swift value from a C value expression.
    func fromC(_ c: String) -> String {
        switch self {
        case .double, .float, .int64, .uint64, .int32, .uint32: c
        case .bool: "(\(c) != 0)"
        case .string: "ProtoC.string(\(c))"
        case .bytes: "ProtoC.bytes(\(c))"
        case .enumeration(let t): "\(t.swiftName)(rawValue: Int32(truncatingIfNeeded: \(c).rawValue))"
        case .message(let t): "\(t.swiftName)(_c: \(c)!)"
        }
    }

    /// C value from a Swift value expression (allocating into `arena`).
    func toC(_ s: String) -> String {
        switch self {
        case .double, .float, .int64, .uint64, .int32, .uint32: s
        case .bool: "(\(s) ? 1 : 0)"
        case .string: "arena.cString(\(s))"
        case .bytes: "arena.binary(\(s))"
        case .enumeration(let t): "\(t.cType)(rawValue: .init(truncatingIfNeeded: \(s).rawValue))"
        case .message: "\(s)._toC(arena)"
        }
    }

    /// Expression that is true when the value is the proto3 default (omitted from JSON).
    func isDefault(_ s: String) -> String {
        switch self {
        case .double, .float, .int64, .uint64, .int32, .uint32: "\(s) == 0"
        case .bool: "!\(s)"
        case .string, .bytes: "\(s).isEmpty"
        case .enumeration: "\(s).rawValue == 0"
        case .message: "false"
        }
    }

    func toJSON(_ s: String) -> String {
        switch self {
        case .int32, .uint32: "ProtoJSON.int32(\(s))"
        case .int64, .uint64: "ProtoJSON.int64(\(s))"
        case .double, .float: "ProtoJSON.double(\(s))"
        case .bool: ".bool(\(s))"
        case .string: ".string(\(s))"
        case .bytes: "ProtoJSON.bytes(\(s))"
        case .enumeration: "\(s).jsonValue"
        case .message: "\(s).jsonValue()"
        }
    }

    func fromJSON(_ j: String, field: String) -> String {
        switch self {
        case .int32: "try ProtoJSON.int32(\(j), field: \"\(field)\")"
        case .uint32: "try ProtoJSON.uint32(\(j), field: \"\(field)\")"
        case .int64: "try ProtoJSON.int64(\(j), field: \"\(field)\")"
        case .uint64: "try ProtoJSON.uint64(\(j), field: \"\(field)\")"
        case .double: "try ProtoJSON.double(\(j), field: \"\(field)\")"
        case .float: "try ProtoJSON.float(\(j), field: \"\(field)\")"
        case .bool: "try ProtoJSON.bool(\(j), field: \"\(field)\")"
        case .string: "try ProtoJSON.string(\(j), field: \"\(field)\")"
        case .bytes: "try ProtoJSON.bytes(\(j), field: \"\(field)\")"
        case .enumeration(let t): "try \(t.swiftName)(jsonValue: \(j), field: \"\(field)\")"
        case .message(let t): "try \(t.swiftName)(jsonValue: \(j))"
        }
    }

    /// Parses a JSON map key (always a string) into this key type.
    func mapKeyParser() -> String {
        switch self {
        case .string: "{ $0 }"
        case .bool: "{ $0 == \"true\" ? true : ($0 == \"false\" ? false : nil) }"
        default: "{ \(swiftType)($0) }"
        }
    }

    var isMessage: Bool { if case .message = self { return true } else { return false } }
}
