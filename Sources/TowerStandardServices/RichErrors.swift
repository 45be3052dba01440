import TowerProto
import TowerProtoRuntime
import TowerRPC

/// One invalid request field: where it is and how to fix it.
public struct FieldViolation: Sendable, Hashable {
    /// Path to the field, e.g. `lead.phones[1].number`.
    public var field: String
    /// What is wrong and what to send instead.
    public var description: String

    public init(field: String, description: String) {
        self.field = field
        self.description = description
    }
}

extension RPCError {
    /// INVALID_ARGUMENT carrying `google.rpc.BadRequest` in `grpc-status-details-bin`, so generated
    /// clients in any language can show which fields were wrong. The message names them too, for
    /// clients that only read `grpc-message`.
    public static func invalidArgument(_ violations: [FieldViolation], message: String? = nil) -> RPCError {
        let text = message ?? violations.map { "\($0.field): \($0.description)" }.joined(separator: "; ")
        var badRequest = Google_Rpc_BadRequest()
        badRequest.fieldViolations = violations.map {
            var v = Google_Rpc_BadRequest.FieldViolation()
            v.field = $0.field
            v.description = $0.description
            return v
        }
        return RPCError(code: .invalidArgument, message: text, statusDetails: statusDetails(.invalidArgument, text, [pack(badRequest)]))
    }

    /// Wraps a message as `google.protobuf.Any` with the conventional type URL.
    public static func pack<M: ProtoMessage>(_ message: M) -> Google_Protobuf_Any {
        var any = Google_Protobuf_Any()
        any.typeURL = "type.googleapis.com/" + M.protoMessageName
        any.value = message.protobufBytes()
        return any
    }

    /// A serialized `google.rpc.Status`.
    public static func statusDetails(_ code: Code, _ message: String, _ details: [Google_Protobuf_Any]) -> [UInt8] {
        var status = Google_Rpc_Status()
        status.code = Int32(code.rawValue)
        status.message = message
        status.details = details
        return status.protobufBytes()
    }

    /// The field violations this error carries, if its details hold a `google.rpc.BadRequest`.
    public var fieldViolations: [FieldViolation] {
        guard let details = statusDetails, let status = try? Google_Rpc_Status(protobufBytes: details) else { return [] }
        return status.details
            .filter { $0.typeURL.hasSuffix("/" + Google_Rpc_BadRequest.protoMessageName) }
            .compactMap { try? Google_Rpc_BadRequest(protobufBytes: $0.value) }
            .flatMap { $0.fieldViolations.map { FieldViolation(field: $0.field, description: $0.description) } }
    }
}
