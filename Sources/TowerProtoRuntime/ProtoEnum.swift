/// An enum generated from a proto enum. Values the schema does not know (sent by a newer peer)
/// survive a round trip as `unrecognized(n)` instead of being lost.
public protocol ProtoEnum: Sendable, Hashable, RawRepresentable where RawValue == Int32 {
    init(rawValue: Int32)
    /// The value's name in the proto file, e.g. `COLOR_RED`; nil for an unrecognized value.
    var protoName: String? { get }
    /// The value with this proto name, if the schema has one.
    init?(protoName: String)
}

extension ProtoEnum {
    /// proto3 JSON: the value's name, or its number when the schema does not know it.
    public var jsonValue: JSONValue {
        if let name = protoName { return .string(name) }
        return .number(String(rawValue))
    }

    /// proto3 JSON: a value's name or number.
    public init(jsonValue: JSONValue, field: String) throws(ProtoDecodingError) {
        switch jsonValue {
        case .string(let name):
            guard let v = Self(protoName: name) else {
                throw ProtoDecodingError(message: "field \(field): \"\(name)\" is not a known value")
            }
            self = v
        case .number:
            self.init(rawValue: try ProtoJSON.int32(jsonValue, field: field))
        case .null:
            self.init(rawValue: 0)
        default:
            throw ProtoDecodingError(message: "field \(field): expected an enum name or number")
        }
    }
}

/// Heap storage for a message field whose type contains itself (directly or through other
/// messages), which a Swift struct cannot hold inline.
public final class ProtoBox<Value: Sendable & Hashable>: Sendable, Hashable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
    public static func == (lhs: ProtoBox, rhs: ProtoBox) -> Bool { lhs.value == rhs.value }
    public func hash(into hasher: inout Hasher) { hasher.combine(value) }
}

/// One `.proto` file of a generated module, kept as serialized `FileDescriptorProto` for server
/// reflection.
public struct ProtoFileDescriptor: Sendable {
    public let name: String
    public let package: String
    public let dependencies: [String]
    /// Fully qualified names of the messages, enums, services and methods the file defines.
    public let symbols: [String]
    /// Fully qualified names of the services the file defines.
    public let services: [String]
    private let serializedBase64: String

    public init(name: String, package: String, dependencies: [String], symbols: [String], services: [String], serializedBase64: String) {
        self.name = name
        self.package = package
        self.dependencies = dependencies
        self.symbols = symbols
        self.services = services
        self.serializedBase64 = serializedBase64
    }

    /// The serialized `google.protobuf.FileDescriptorProto`.
    public var serialized: [UInt8] { Base64.decode(serializedBase64) ?? [] }
}
