import CProtoDescriptor
import CProtobufC

/// The schema of every `.proto` file in a descriptor set, as plain Swift values.
///
/// This is the only file of the generator that touches protobuf-c: it unpacks the
/// `FileDescriptorSet` that `protoc --descriptor_set_out --include_source_info` wrote.
struct DescriptorSet {
    var files: [FileDef]

    init(bytes: [UInt8]) throws {
        guard let set = bytes.withUnsafeBufferPointer({ google__protobuf__file_descriptor_set__unpack(nil, $0.count, $0.baseAddress) })
        else {
            throw GeneratorError("the descriptor set is not a valid google.protobuf.FileDescriptorSet")
        }
        defer { google__protobuf__file_descriptor_set__free_unpacked(set, nil) }
        files = (0..<set.pointee.n_file).map { FileDef(set.pointee.file[$0]!) }
    }
}

struct GeneratorError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

private func str(_ p: UnsafeMutablePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

/// Comments attached to schema elements, keyed by source path (see descriptor.proto's SourceCodeInfo).
struct Comments {
    private var byPath: [[Int32]: String] = [:]

    init(_ info: UnsafeMutablePointer<Google__Protobuf__SourceCodeInfo>?) {
        guard let info else { return }
        for i in 0..<info.pointee.n_location {
            let loc = info.pointee.location[i]!.pointee
            let path = Array(UnsafeBufferPointer(start: loc.path, count: loc.n_path))
            let text = str(loc.leading_comments).isEmpty ? str(loc.trailing_comments) : str(loc.leading_comments)
            if !text.isEmpty { byPath[path] = text }
        }
    }

    subscript(path: [Int32]) -> String { byPath[path] ?? "" }
}

struct FileDef {
    var name: String
    var package: String
    var syntax: String
    var dependencies: [String]
    var messages: [MessageDef]
    var enums: [EnumDef]
    var services: [ServiceDef]
    /// The file's own `FileDescriptorProto`, serialized, for server reflection.
    var serialized: [UInt8]

    init(_ p: UnsafeMutablePointer<Google__Protobuf__FileDescriptorProto>) {
        let f = p.pointee
        name = str(f.name)
        package = str(f.package)
        syntax = str(f.syntax).isEmpty ? "proto2" : str(f.syntax)
        dependencies = (0..<f.n_dependency).map { str(f.dependency[$0]) }
        let comments = Comments(f.source_code_info)
        let scope = package.isEmpty ? "" : package + "."
        messages = (0..<f.n_message_type).map { MessageDef(f.message_type[$0]!, scope: scope, path: [4, Int32($0)], comments: comments) }
        enums = (0..<f.n_enum_type).map { EnumDef(f.enum_type[$0]!, scope: scope, path: [5, Int32($0)], comments: comments) }
        services = (0..<f.n_service).map { ServiceDef(f.service[$0]!, scope: scope, path: [6, Int32($0)], comments: comments) }
        let size = google__protobuf__file_descriptor_proto__get_packed_size(p)
        var out = [UInt8](repeating: 0, count: size)
        _ = out.withUnsafeMutableBufferPointer { google__protobuf__file_descriptor_proto__pack(p, $0.baseAddress) }
        serialized = out
    }
}

struct MessageDef {
    var name: String
    var fullName: String
    var fields: [FieldDef]
    var oneofs: [String]
    var messages: [MessageDef]
    var enums: [EnumDef]
    var isMapEntry: Bool
    var comment: String

    init(_ p: UnsafeMutablePointer<Google__Protobuf__DescriptorProto>, scope: String, path: [Int32], comments: Comments) {
        let m = p.pointee
        name = str(m.name)
        fullName = scope + name
        comment = comments[path]
        isMapEntry = m.options.map { $0.pointee.has_map_entry != 0 && $0.pointee.map_entry != 0 } ?? false
        oneofs = (0..<m.n_oneof_decl).map { str(m.oneof_decl[$0]!.pointee.name) }
        let inner = fullName + "."
        fields = (0..<m.n_field).map { FieldDef(m.field[$0]!, comment: comments[path + [2, Int32($0)]]) }
        messages = (0..<m.n_nested_type).map {
            MessageDef(m.nested_type[$0]!, scope: inner, path: path + [3, Int32($0)], comments: comments)
        }
        enums = (0..<m.n_enum_type).map { EnumDef(m.enum_type[$0]!, scope: inner, path: path + [4, Int32($0)], comments: comments) }
    }
}

enum FieldType: Int32 {
    case double = 1, float, int64, uint64, int32, fixed64, fixed32, bool, string, group, message, bytes, uint32, enumeration, sfixed32,
        sfixed64, sint32, sint64
}

struct FieldDef {
    enum Label { case optional, required, repeated }
    var name: String
    var number: Int32
    var label: Label
    var type: FieldType
    /// Fully qualified type name with a leading dot, for message and enum fields.
    var typeName: String
    var jsonName: String
    var oneofIndex: Int?
    var proto3Optional: Bool
    var comment: String

    init(_ p: UnsafeMutablePointer<Google__Protobuf__FieldDescriptorProto>, comment: String) {
        let f = p.pointee
        name = str(f.name)
        number = f.number
        switch f.label.rawValue {
        case 2: label = .required
        case 3: label = .repeated
        default: label = .optional
        }
        type = FieldType(rawValue: Int32(f.type.rawValue)) ?? .bytes
        typeName = str(f.type_name)
        jsonName = str(f.json_name)
        oneofIndex = f.has_oneof_index != 0 ? Int(f.oneof_index) : nil
        proto3Optional = f.has_proto3_optional != 0 && f.proto3_optional != 0
        self.comment = comment
    }
}

struct EnumDef {
    struct Value { var name: String; var number: Int32; var comment: String }
    var name: String
    var fullName: String
    var values: [Value]
    var comment: String

    init(_ p: UnsafeMutablePointer<Google__Protobuf__EnumDescriptorProto>, scope: String, path: [Int32], comments: Comments) {
        let e = p.pointee
        name = str(e.name)
        fullName = scope + name
        comment = comments[path]
        values = (0..<e.n_value).map {
            let v = e.value[$0]!.pointee
            return Value(name: str(v.name), number: v.number, comment: comments[path + [2, Int32($0)]])
        }
    }
}

struct ServiceDef {
    struct Method {
        var name: String
        var inputType: String
        var outputType: String
        var clientStreaming: Bool
        var serverStreaming: Bool
        var comment: String
    }
    var name: String
    var fullName: String
    var methods: [Method]
    var comment: String

    init(_ p: UnsafeMutablePointer<Google__Protobuf__ServiceDescriptorProto>, scope: String, path: [Int32], comments: Comments) {
        let s = p.pointee
        name = str(s.name)
        fullName = scope + name
        comment = comments[path]
        methods = (0..<s.n_method).map {
            let m = s.method[$0]!.pointee
            return Method(
                name: str(m.name), inputType: str(m.input_type), outputType: str(m.output_type),
                clientStreaming: m.has_client_streaming != 0 && m.client_streaming != 0,
                serverStreaming: m.has_server_streaming != 0 && m.server_streaming != 0,
                comment: comments[path + [2, Int32($0)]])
        }
    }
}
