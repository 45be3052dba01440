/// A message type generated from `proto/` by `ctower-codegen`.
///
/// The binary codec is protobuf-c: a generated type converts itself to and from its protobuf-c struct
/// and lets protobuf-c pack and unpack the wire bytes. JSON follows the proto3 canonical mapping.
public protocol ProtoMessage: Sendable, Hashable {
    /// The fully qualified proto name, e.g. `grpc.health.v1.HealthCheckRequest`.
    static var protoMessageName: String { get }

    /// A message with every field at its default.
    init()

    /// Decodes the protobuf wire format.
    init(protobufBytes bytes: UnsafeRawBufferPointer) throws(ProtoDecodingError)

    /// Encodes the protobuf wire format and hands the bytes to `body` without copying them again.
    func withProtobufBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R

    /// Encodes the proto3 canonical JSON form.
    func jsonValue() -> JSONValue

    /// Decodes the proto3 canonical JSON form (unknown fields are rejected with their name).
    init(jsonValue: JSONValue) throws(ProtoDecodingError)
}

extension ProtoMessage {
    /// Decodes the protobuf wire format from any contiguous bytes.
    @inlinable
    public init(protobufBytes bytes: [UInt8]) throws(ProtoDecodingError) {
        let result = bytes.withUnsafeBytes { raw -> Result<Self, ProtoDecodingError> in
            do throws(ProtoDecodingError) { return .success(try Self(protobufBytes: raw)) } catch { return .failure(error) }
        }
        self = try result.get()
    }

    /// The protobuf wire bytes as an array.
    @inlinable
    public func protobufBytes() -> [UInt8] {
        withProtobufBytes { Array($0) }
    }

    /// The proto3 canonical JSON text.
    public func jsonString(pretty: Bool = false) -> String {
        jsonValue().serialized(pretty: pretty)
    }

    /// Decodes proto3 canonical JSON text.
    public init(jsonString: String) throws(ProtoDecodingError) {
        let value: JSONValue
        do { value = try JSONValue.parse(jsonString) } catch { throw ProtoDecodingError(message: "invalid JSON: \(error.message)") }
        try self.init(jsonValue: value)
    }
}

/// Why bytes or JSON could not be decoded into a message. The message never echoes the input.
public struct ProtoDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
