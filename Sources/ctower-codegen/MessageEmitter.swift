/// Emits the Swift struct for one message (and its nested types), its protobuf-c conversion and its
/// proto3 JSON mapping.
struct MessageEmitter {
    let registry: TypeRegistry

    indirect enum Shape {
        case implicit(Scalar)
        case optionalScalar(Scalar)
        case message(TypeInfo, boxed: Bool)
        case wrapper(TypeInfo, inner: Scalar)
        case repeated(Scalar)
        case map(key: Scalar, value: Scalar, entry: TypeInfo)
    }

    struct Field {
        let def: FieldDef
        let shape: Shape
        let swiftName: String
        let cName: String
        var jsonName: String { def.jsonName.isEmpty ? Naming.lowerCamel(def.name) : def.jsonName }
    }

    struct Oneof {
        let name: String
        let swiftName: String
        let typeName: String
        let cName: String
        let cases: [(field: FieldDef, scalar: Scalar, caseName: String, boxed: Bool)]
    }

    func fields(of info: TypeInfo) -> (fields: [Field], oneofs: [Oneof]) {
        let m = info.message!
        var fields: [Field] = []
        var oneofCases: [Int: [(FieldDef, Scalar, String, Bool)]] = [:]
        for f in m.fields {
            let scalar = Scalar(f, registry: registry)
            if let idx = f.oneofIndex, !f.proto3Optional {
                var boxed = false
                if case .message(let t) = scalar { boxed = registry.isRecursive(from: t.fullName, to: info.fullName) }
                oneofCases[idx, default: []].append((f, scalar, Naming.lowerCamel(f.name), boxed))
                continue
            }
            let shape: Shape
            if f.label == .repeated {
                if case .message(let t) = scalar, let entry = t.message, entry.isMapEntry {
                    shape = .map(
                        key: Scalar(entry.fields[0], registry: registry), value: Scalar(entry.fields[1], registry: registry), entry: t)
                } else {
                    shape = .repeated(scalar)
                }
            } else if case .message(let t) = scalar {
                if t.isWrapper {
                    shape = .wrapper(t, inner: Scalar(t.message!.fields[0], registry: registry))
                } else {
                    shape = .message(t, boxed: registry.isRecursive(from: t.fullName, to: info.fullName))
                }
            } else if f.proto3Optional || info.syntax == "proto2" {
                shape = .optionalScalar(scalar)
            } else {
                shape = .implicit(scalar)
            }
            fields.append(Field(def: f, shape: shape, swiftName: Naming.lowerCamel(f.name), cName: Naming.cFieldName(f.name)))
        }
        let oneofs = m.oneofs.enumerated().compactMap { (i, name) -> Oneof? in
            guard let cases = oneofCases[i] else { return nil }
            return Oneof(
                name: name, swiftName: Naming.lowerCamel(name), typeName: Naming.snakeToUpperCamel(name),
                cName: Naming.cFieldName(name), cases: cases.map { ($0.0, $0.1, $0.2, $0.3) })
        }
        return (fields, oneofs)
    }

    // MARK: declarations

    /// The struct declaration, with nested messages and enums inside it.
    func declaration(_ info: TypeInfo, indent: String) -> String {
        let m = info.message!
        let localName = info.swiftName.split(separator: ".").last.map(String.init)!
        let (fields, oneofs) = fields(of: info)
        var out = Naming.docComment(m.comment, indent: indent)
        out += "\(indent)public struct \(localName): ProtoMessage {\n"
        let i2 = indent + "    "
        out += "\(i2)public static let protoMessageName = \"\(info.fullName)\"\n\n"
        for f in fields {
            out += Naming.docComment(f.def.comment, indent: i2)
            let name = Naming.escaped(f.swiftName)
            switch f.shape {
            case .implicit(let s):
                out += "\(i2)public var \(name): \(s.swiftType) = \(s.defaultValue)\n"
            case .optionalScalar(let s):
                out += "\(i2)public var \(name): \(s.swiftType)? = nil\n"
            case .message(let t, let boxed):
                if boxed {
                    out +=
                        "\(i2)public var \(name): \(t.swiftName)? {\n\(i2)    get { _\(f.swiftName)?.value }\n\(i2)    set { _\(f.swiftName) = newValue.map(ProtoBox.init) }\n\(i2)}\n"
                    out += "\(i2)private var _\(f.swiftName): ProtoBox<\(t.swiftName)>? = nil\n"
                } else {
                    out += "\(i2)public var \(name): \(t.swiftName)? = nil\n"
                }
            case .wrapper(_, let inner):
                out += "\(i2)public var \(name): \(inner.swiftType)? = nil\n"
            case .repeated(let s):
                out += "\(i2)public var \(name): [\(s.swiftType)] = []\n"
            case .map(let k, let v, _):
                out += "\(i2)public var \(name): [\(k.swiftType): \(v.swiftType)] = [:]\n"
            }
        }
        for o in oneofs {
            out += "\(i2)public var \(Naming.escaped(o.swiftName)): \(o.typeName)? = nil\n"
        }
        for o in oneofs {
            out += "\n\(i2)/// The members of `oneof \(o.name)`: at most one is set.\n"
            let recursive = o.cases.contains { $0.boxed }
            out += "\(i2)public \(recursive ? "indirect " : "")enum \(o.typeName): Sendable, Hashable {\n"
            for c in o.cases {
                out += Naming.docComment(c.field.comment, indent: i2 + "    ")
                out += "\(i2)    case \(Naming.escaped(c.caseName))(\(c.scalar.swiftType))\n"
            }
            out += "\(i2)}\n"
        }
        for n in m.messages where !n.isMapEntry {
            out += "\n" + declaration(registry[n.fullName], indent: i2)
        }
        for e in m.enums {
            out += "\n" + EnumEmitter().declaration(registry[e.fullName], indent: i2)
        }
        out += "\n\(i2)public init() {}\n"
        out += "\(indent)}\n"
        return out
    }

    /// Conversion and JSON extensions for the message and (recursively) its nested messages.
    func extensions(_ info: TypeInfo) -> String {
        var out = conversionExtension(info)
        for n in info.message!.messages where !n.isMapEntry {
            out += "\n" + extensions(registry[n.fullName])
        }
        return out
    }

    // MARK: protobuf-c conversion

    private func conversionExtension(_ info: TypeInfo) -> String {
        let (fields, oneofs) = fields(of: info)
        let T = info.cType
        var out = "extension \(info.swiftName) {\n"
        out += """
                nonisolated(unsafe) private static let _cDescriptor = ProtoC.descriptor(of: \(T).self, initialize: \(info.cLower)__init)

                public init(protobufBytes bytes: UnsafeRawBufferPointer) throws(ProtoDecodingError) {
                    self = try ProtoC.decode(bytes, descriptor: Self._cDescriptor, as: \(T).self) { Self(_c: $0) }
                }

                public func withProtobufBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
                    let arena = ProtoCArena()
                    return try arena.pack(_toC(arena), body)
                }


            """
        // C -> Swift
        out += "    package init(_c p: UnsafePointer<\(T)>) {\n        self.init()\n"
        if !fields.isEmpty || !oneofs.isEmpty { out += "        let c = p.pointee\n" }
        for f in fields {
            let target = "self.\(f.swiftName)"
            let src = "c.\(f.cName)"
            switch f.shape {
            case .implicit(let s):
                out += "        \(target) = \(s.fromC(src))\n"
            case .optionalScalar(let s):
                let present =
                    s.isMessage || { if case .string = s { return true } else { return false } }()
                    ? "\(src) != nil" : "c.has_\(f.cName) != 0"
                out += "        if \(present) { \(target) = \(s.fromC(src)) }\n"
            case .message(let t, _):
                out += "        if let v = \(src) { \(target) = \(t.swiftName)(_c: v) }\n"
            case .wrapper(_, let inner):
                out += "        if let v = \(src) { \(target) = \(inner.fromC("v.pointee.value")) }\n"
            case .repeated(let s):
                out += "        \(target) = ProtoC.array(\(src), c.n_\(f.cName)) { \(s.fromC("$0")) }\n"
            case .map(let k, let v, _):
                out += "        for i in 0..<c.n_\(f.cName) {\n"
                out += "            let e = \(src)[i]!.pointee\n"
                let value = v.isMessage ? "e.value.map { \(v.swiftType)(_c: $0) } ?? \(v.swiftType)()" : v.fromC("e.value")
                out += "            \(target)[\(k.fromC("e.key"))] = \(value)\n"
                out += "        }\n"
            }
        }
        for o in oneofs {
            out += "        switch c.\(o.cName)_case.rawValue {\n"
            for c in o.cases {
                out +=
                    "        case \(c.field.number): self.\(o.swiftName) = .\(Naming.escaped(c.caseName))(\(c.scalar.fromC("c.\(Naming.cFieldName(c.field.name))")))\n"
            }
            out += "        default: break\n        }\n"
        }
        out += "    }\n\n"

        // Swift -> C
        out += "    package func _toC(_ arena: ProtoCArena) -> UnsafeMutablePointer<\(T)> {\n"
        out += "        let m = arena.allocate(\(T).self)\n"
        out += "        \(info.cLower)__init(m)\n"
        for f in fields {
            let src = "self.\(f.swiftName)"
            let dst = "m.pointee.\(f.cName)"
            switch f.shape {
            case .implicit(let s):
                if case .string = s {
                    out += "        if !\(src).isEmpty { \(dst) = \(s.toC(src)) }\n"
                } else {
                    out += "        \(dst) = \(s.toC(src))\n"
                }
            case .optionalScalar(let s):
                if s.isMessage || { if case .string = s { return true } else { return false } }() {
                    out += "        if let v = \(src) { \(dst) = \(s.toC("v")) }\n"
                } else {
                    out += "        if let v = \(src) { m.pointee.has_\(f.cName) = 1; \(dst) = \(s.toC("v")) }\n"
                }
            case .message:
                out += "        if let v = \(src) { \(dst) = v._toC(arena) }\n"
            case .wrapper(let t, let inner):
                out += "        if let v = \(src) {\n"
                out += "            let w = arena.allocate(\(t.cType).self)\n"
                out += "            \(t.cLower)__init(w)\n"
                out += "            w.pointee.value = \(inner.toC("v"))\n"
                out += "            \(dst) = w\n        }\n"
            case .repeated(let s):
                out += "        m.pointee.n_\(f.cName) = \(src).count\n"
                out += "        \(dst) = arena.array(\(src)) { \(s.toC("$0")) }\n"
            case .map(let k, let v, let entry):
                out += "        m.pointee.n_\(f.cName) = \(src).count\n"
                // Sorted so the same map always encodes to the same bytes.
                let order = { if case .bool = k { return "!$0.key && $1.key" } else { return "$0.key < $1.key" } }()
                out +=
                    "        \(dst) = arena.array(\(src).sorted { \(order) }) { (key, value) -> UnsafeMutablePointer<\(entry.cType)>? in\n"
                out += "            let e = arena.allocate(\(entry.cType).self)\n"
                out += "            \(entry.cLower)__init(e)\n"
                out += "            e.pointee.key = \(k.toC("key"))\n"
                out += "            e.pointee.value = \(v.toC("value"))\n"
                out += "            return e\n        }\n"
            }
        }
        for o in oneofs {
            out += "        switch self.\(o.swiftName) {\n"
            for c in o.cases {
                out += "        case .\(Naming.escaped(c.caseName))(let v):\n"
                out += "            m.pointee.\(o.cName)_case = .init(rawValue: \(c.field.number))\n"
                out += "            m.pointee.\(Naming.cFieldName(c.field.name)) = \(c.scalar.toC("v"))\n"
            }
            out += "        case nil: break\n        }\n"
        }
        out += "        return m\n    }\n\n"
        out += JSONEmitter(registry: registry, emitter: self).json(info, fields: fields, oneofs: oneofs)
        out += "}\n"
        return out
    }
}

/// Emits enums with an `unrecognized` case that keeps values a newer peer sent.
struct EnumEmitter {
    func declaration(_ info: TypeInfo, indent: String) -> String {
        let e = info.enumeration!
        let localName = info.swiftName.split(separator: ".").last.map(String.init)!
        let names = Naming.enumCaseNames(enumName: e.name, values: e.values.map(\.name))
        var seen: [Int32: String] = [:]
        var primary: [(EnumDef.Value, String)] = []
        var aliases: [(String, String)] = []
        for (v, n) in zip(e.values, names) {
            if let first = seen[v.number] { aliases.append((n, first)) } else { seen[v.number] = n; primary.append((v, n)) }
        }
        let i2 = indent + "    "
        var out = Naming.docComment(e.comment, indent: indent)
        out += "\(indent)public enum \(localName): ProtoEnum, CaseIterable {\n"
        for (v, n) in primary {
            out += Naming.docComment(v.comment, indent: i2)
            out += "\(i2)case \(Naming.escaped(n))  // \(v.name) = \(v.number)\n"
        }
        out += "\(i2)/// A value this schema does not know, kept so it survives a round trip.\n"
        out += "\(i2)case unrecognized(Int32)\n\n"
        for (alias, target) in aliases { out += "\(i2)public static let \(Naming.escaped(alias)) = Self.\(target)\n" }
        out += "\(i2)public init() { self = .\(primary[0].1) }\n\n"
        out += "\(i2)public init(rawValue: Int32) {\n\(i2)    switch rawValue {\n"
        for (v, n) in primary { out += "\(i2)    case \(v.number): self = .\(n)\n" }
        out += "\(i2)    default: self = .unrecognized(rawValue)\n\(i2)    }\n\(i2)}\n\n"
        out += "\(i2)public var rawValue: Int32 {\n\(i2)    switch self {\n"
        for (v, n) in primary { out += "\(i2)    case .\(n): \(v.number)\n" }
        out += "\(i2)    case .unrecognized(let v): v\n\(i2)    }\n\(i2)}\n\n"
        out += "\(i2)public var protoName: String? {\n\(i2)    switch self {\n"
        for (v, n) in primary { out += "\(i2)    case .\(n): \"\(v.name)\"\n" }
        out += "\(i2)    case .unrecognized: nil\n\(i2)    }\n\(i2)}\n\n"
        out += "\(i2)public init?(protoName: String) {\n\(i2)    switch protoName {\n"
        for (v, n) in zip(e.values, names) { out += "\(i2)    case \"\(v.name)\": self = .\(Naming.escaped(n))\n" }
        out += "\(i2)    default: return nil\n\(i2)    }\n\(i2)}\n\n"
        out += "\(i2)public static var allCases: [Self] { [\(primary.map { "." + $0.1 }.joined(separator: ", "))] }\n"
        out += "\(indent)}\n"
        return out
    }
}
