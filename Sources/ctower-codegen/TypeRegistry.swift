/// Every message and enum in the descriptor set, with the names each side (C, Swift) knows it by.
final class TypeInfo {
    enum Kind { case message(MessageDef), enumeration(EnumDef) }
    let fullName: String
    let swiftName: String
    let cType: String
    let cLower: String
    let module: String
    let syntax: String
    let kind: Kind

    init(fullName: String, swiftName: String, module: String, syntax: String, kind: Kind) {
        self.fullName = fullName
        self.swiftName = swiftName
        self.cType = Naming.cTypeName(fullName)
        self.cLower = Naming.cLowerName(fullName)
        self.module = module
        self.syntax = syntax
        self.kind = kind
    }

    var message: MessageDef? { if case .message(let m) = kind { return m } else { return nil } }
    var enumeration: EnumDef? { if case .enumeration(let e) = kind { return e } else { return nil } }

    /// google.protobuf.*Value: a singular field of this type becomes a Swift optional of the wrapped value.
    var isWrapper: Bool {
        fullName.hasPrefix("google.protobuf.") && fullName.hasSuffix("Value") && !["google.protobuf.Value"].contains(fullName)
            && message?.fields.count == 1 && message?.fields.first?.name == "value"
    }
}

struct TypeRegistry {
    private(set) var types: [String: TypeInfo] = [:]
    let prefixes: [String: String]

    init(files: [FileDef], moduleOfFile: [String: String], prefixes: [String: String]) {
        self.prefixes = prefixes
        for file in files {
            let module = moduleOfFile[file.name] ?? ""
            let prefix = prefixes[file.package] ?? Naming.defaultSwiftPrefix(package: file.package)
            for m in file.messages { register(m, swiftName: prefix + m.name, module: module, syntax: file.syntax) }
            for e in file.enums {
                types[e.fullName] = TypeInfo(
                    fullName: e.fullName, swiftName: prefix + e.name, module: module, syntax: file.syntax, kind: .enumeration(e))
            }
        }
    }

    private mutating func register(_ m: MessageDef, swiftName: String, module: String, syntax: String) {
        types[m.fullName] = TypeInfo(fullName: m.fullName, swiftName: swiftName, module: module, syntax: syntax, kind: .message(m))
        for n in m.messages { register(n, swiftName: swiftName + "." + n.name, module: module, syntax: syntax) }
        for e in m.enums {
            types[e.fullName] = TypeInfo(
                fullName: e.fullName, swiftName: swiftName + "." + e.name, module: module, syntax: syntax, kind: .enumeration(e))
        }
    }

    subscript(typeName: String) -> TypeInfo {
        let key = typeName.hasPrefix(".") ? String(typeName.dropFirst()) : typeName
        guard let t = types[key] else { fatalError("ctower-codegen: type \(typeName) is not in the descriptor set") }
        return t
    }

    /// Whether a singular field of type `target` inside `owner` would make `owner` contain itself.
    func isRecursive(from target: String, to owner: String) -> Bool {
        var seen: Set<String> = []
        var stack = [target]
        while let name = stack.popLast() {
            if name == owner { return true }
            guard seen.insert(name).inserted, let m = types[name]?.message else { continue }
            for f in m.fields where f.label != .repeated && f.type == .message {
                let t = self[f.typeName]
                if t.message?.isMapEntry == true { continue }
                stack.append(t.fullName)
            }
        }
        return false
    }
}
