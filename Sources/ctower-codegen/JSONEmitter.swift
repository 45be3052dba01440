/// Emits the proto3 canonical JSON mapping of a message, with the special forms of the
/// well-known types (Timestamp, Duration, FieldMask, Empty, Any, wrappers).
struct JSONEmitter {
    let registry: TypeRegistry
    let emitter: MessageEmitter

    func json(_ info: TypeInfo, fields: [MessageEmitter.Field], oneofs: [MessageEmitter.Oneof]) -> String {
        if let special = wellKnown(info) { return special }
        if fields.isEmpty && oneofs.isEmpty {
            return """
                    public func jsonValue() -> JSONValue { .object([]) }

                    public init(jsonValue: JSONValue) throws(ProtoDecodingError) {
                        self.init()
                        guard case .object(let members) = jsonValue else { throw ProtoJSON.expectedObject(Self.protoMessageName) }
                        if let (key, _) = members.first { throw ProtoJSON.unknownField(key, in: Self.protoMessageName) }
                    }

                """
        }
        var out = "    public func jsonValue() -> JSONValue {\n"
        out += "        var o: [(String, JSONValue)] = []\n"
        for f in fields {
            let src = "self.\(f.swiftName)"
            let key = "\"\(f.jsonName)\""
            switch f.shape {
            case .implicit(let s):
                out += "        if !(\(s.isDefault(src))) { o.append((\(key), \(s.toJSON(src)))) }\n"
            case .optionalScalar(let s), .wrapper(_, let s):
                out += "        if let v = \(src) { o.append((\(key), \(s.toJSON("v")))) }\n"
            case .message:
                out += "        if let v = \(src) { o.append((\(key), v.jsonValue())) }\n"
            case .repeated(let s):
                out += "        if !\(src).isEmpty { o.append((\(key), .array(\(src).map { \(s.toJSON("$0")) }))) }\n"
            case .map(_, let v, _):
                out +=
                    "        if !\(src).isEmpty { o.append((\(key), .object(\(src).map { (ProtoJSON.mapKey($0.key), \(v.toJSON("$0.value"))) }.sorted { $0.0 < $1.0 }))) }\n"
            }
        }
        for o in oneofs {
            out += "        switch self.\(o.swiftName) {\n"
            for c in o.cases {
                let jsonName = c.field.jsonName.isEmpty ? Naming.lowerCamel(c.field.name) : c.field.jsonName
                out += "        case .\(Naming.escaped(c.caseName))(let v): o.append((\"\(jsonName)\", \(c.scalar.toJSON("v"))))\n"
            }
            out += "        case nil: break\n        }\n"
        }
        out += "        return .object(o)\n    }\n\n"

        out += "    public init(jsonValue: JSONValue) throws(ProtoDecodingError) {\n"
        out += "        self.init()\n"
        out += "        guard case .object(let members) = jsonValue else { throw ProtoJSON.expectedObject(Self.protoMessageName) }\n"
        out += "        for (key, value) in members {\n"
        out += "            if case .null = value { continue }\n"
        out += "            switch key {\n"
        for f in fields {
            let target = "self.\(f.swiftName)"
            let labels = Set([f.jsonName, f.def.name]).sorted().map { "\"\($0)\"" }.joined(separator: ", ")
            let field = f.jsonName
            switch f.shape {
            case .implicit(let s), .optionalScalar(let s), .wrapper(_, let s):
                out += "            case \(labels): \(target) = \(s.fromJSON("value", field: field))\n"
            case .message(let t, _):
                out += "            case \(labels): \(target) = try \(t.swiftName)(jsonValue: value)\n"
            case .repeated(let s):
                out +=
                    "            case \(labels): \(target) = try ProtoJSON.array(value, field: \"\(field)\").map { (item) throws(ProtoDecodingError) in \(s.fromJSON("item", field: field)) }\n"
            case .map(let k, let v, _):
                out += "            case \(labels):\n"
                out += "                for (k, item) in try ProtoJSON.object(value, field: \"\(field)\") {\n"
                out +=
                    "                    \(target)[try ProtoJSON.mapKey(k, field: \"\(field)\", parse: \(k.mapKeyParser()))] = \(v.fromJSON("item", field: field))\n"
                out += "                }\n"
            }
        }
        for o in oneofs {
            for c in o.cases {
                let jsonName = c.field.jsonName.isEmpty ? Naming.lowerCamel(c.field.name) : c.field.jsonName
                let labels = Set([jsonName, c.field.name]).sorted().map { "\"\($0)\"" }.joined(separator: ", ")
                out += "            case \(labels):\n"
                out +=
                    "                if self.\(o.swiftName) != nil { throw ProtoDecodingError(message: \"\(info.fullName): more than one member of oneof \(o.name) is set\") }\n"
                out +=
                    "                self.\(o.swiftName) = .\(Naming.escaped(c.caseName))(\(c.scalar.fromJSON("value", field: jsonName)))\n"
            }
        }
        out += "            default: throw ProtoJSON.unknownField(key, in: Self.protoMessageName)\n"
        out += "            }\n        }\n    }\n"
        return out
    }

    /// The special JSON forms of google.protobuf's well-known types.
    private func wellKnown(_ info: TypeInfo) -> String? {
        switch info.fullName {
        case "google.protobuf.Timestamp":
            return """
                    public func jsonValue() -> JSONValue { .string(WellKnownJSON.formatTimestamp(seconds: seconds, nanos: nanos)) }

                    public init(jsonValue: JSONValue) throws(ProtoDecodingError) {
                        self.init()
                        (seconds, nanos) = try WellKnownJSON.parseTimestamp(ProtoJSON.string(jsonValue, field: Self.protoMessageName))
                    }

                """
        case "google.protobuf.Duration":
            return """
                    public func jsonValue() -> JSONValue { .string(WellKnownJSON.formatDuration(seconds: seconds, nanos: nanos)) }

                    public init(jsonValue: JSONValue) throws(ProtoDecodingError) {
                        self.init()
                        (seconds, nanos) = try WellKnownJSON.parseDuration(ProtoJSON.string(jsonValue, field: Self.protoMessageName))
                    }

                """
        case "google.protobuf.FieldMask":
            return """
                    public func jsonValue() -> JSONValue { .string(WellKnownJSON.formatFieldMask(paths)) }

                    public init(jsonValue: JSONValue) throws(ProtoDecodingError) {
                        self.init()
                        paths = try WellKnownJSON.parseFieldMask(ProtoJSON.string(jsonValue, field: Self.protoMessageName))
                    }

                """
        case "google.protobuf.Empty":
            return """
                    public func jsonValue() -> JSONValue { .object([]) }

                    public init(jsonValue: JSONValue) throws(ProtoDecodingError) {
                        self.init()
                        guard case .object(let members) = jsonValue, members.isEmpty else {
                            throw ProtoDecodingError(message: "google.protobuf.Empty: expected {}")
                        }
                    }

                """
        case "google.protobuf.Any":
            // Without a type registry the payload cannot be expanded into its fields; it travels as
            // base64 next to its type URL and round-trips losslessly.
            return """
                    public func jsonValue() -> JSONValue {
                        .object([("@type", .string(typeURL)), ("value", ProtoJSON.bytes(value))])
                    }

                    public init(jsonValue: JSONValue) throws(ProtoDecodingError) {
                        self.init()
                        guard case .object = jsonValue else { throw ProtoJSON.expectedObject(Self.protoMessageName) }
                        typeURL = try ProtoJSON.string(jsonValue["@type"] ?? .string(""), field: "@type")
                        value = try ProtoJSON.bytes(jsonValue["value"] ?? .string(""), field: "value")
                    }

                """
        default:
            guard info.isWrapper else { return nil }
            let inner = Scalar(info.message!.fields[0], registry: registry)
            return """
                    public func jsonValue() -> JSONValue { \(inner.toJSON("value")) }

                    public init(jsonValue: JSONValue) throws(ProtoDecodingError) {
                        self.init()
                        value = \(inner.fromJSON("jsonValue", field: "value"))
                    }

                """
        }
    }
}
