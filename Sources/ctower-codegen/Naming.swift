/// How proto names become C names (protobuf-c's rules) and Swift names (ours).
enum Naming {
    static let swiftKeywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init", "inout",
        "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public", "rethrows",
        "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue", "default",
        "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return", "throw", "switch",
        "where", "while", "Any", "as", "false", "is", "nil", "self", "Self", "super", "throws", "true", "try",
        "Type", "Protocol", "some", "any", "await", "async", "package",
    ]
    static let cKeywords: Set<String> = [
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
        "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
        "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
    ]

    /// `ctower.v1.Lead.Phone` -> `Ctower__V1__Lead__Phone` (protobuf-c's FullNameToC).
    static func cTypeName(_ fullName: String) -> String {
        fullName.split(separator: ".").map { part -> String in
            let s = String(part)
            return s.contains("_") ? snakeToUpperCamel(s) : s.prefix(1).uppercased() + s.dropFirst()
        }.joined(separator: "__")
    }

    /// `ctower.v1.HealthCheckRequest` -> `ctower__v1__health_check_request` (protobuf-c's FullNameToLower).
    static func cLowerName(_ fullName: String) -> String {
        fullName.split(separator: ".").map { camelToLower(String($0)) }.joined(separator: "__")
    }

    static func camelToLower(_ name: String) -> String {
        var out = ""
        var previousWasUpper = true
        for ch in name {
            if ch.isUppercase {
                if !previousWasUpper { out.append("_") }
                out.append(contentsOf: ch.lowercased())
                previousWasUpper = true
            } else {
                out.append(ch)
                previousWasUpper = false
            }
        }
        return out
    }

    static func cFieldName(_ name: String) -> String {
        cKeywords.contains(name) ? name + "_" : name
    }

    static func snakeToUpperCamel(_ s: String) -> String {
        s.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// `response_size` -> `responseSize`; `URL_path` -> `urlPath`; `org_id` -> `orgID`.
    static func lowerCamel(_ s: String) -> String {
        let parts = s.split(separator: "_").map(String.init).filter { !$0.isEmpty }
        guard let first = parts.first else { return "_" }
        let head = first == first.uppercased() ? first.lowercased() : first.prefix(1).lowercased() + first.dropFirst()
        let tail = parts.dropFirst().map { p -> String in
            // Swift spells these initialisms in capitals: orgID, statusCallbackURL.
            if ["id", "url", "uri"].contains(p.lowercased()) { return p.uppercased() }
            let lower = p == p.uppercased() ? p.lowercased() : p
            return lower.prefix(1).uppercased() + lower.dropFirst()
        }
        return head + tail.joined()
    }

    /// A name usable as a Swift declaration.
    static func escaped(_ name: String) -> String {
        if swiftKeywords.contains(name) { return "`\(name)`" }
        if let c = name.first, c.isNumber { return "_" + name }
        return name
    }

    /// Swift name of a proto package: `grpc.health.v1` -> `Grpc_Health_V1_`.
    static func defaultSwiftPrefix(package: String) -> String {
        if package.isEmpty { return "" }
        return package.split(separator: ".").map { snakeToUpperCamel(String($0)) }.joined(separator: "_") + "_"
    }

    /// `COLOR_RED` in enum `Color` -> `red`; `NOT_SERVING` -> `notServing`.
    static func enumCaseNames(enumName: String, values: [String]) -> [String] {
        let prefix = camelToLower(enumName).uppercased() + "_"
        let strip = values.allSatisfy { $0.hasPrefix(prefix) && $0.count > prefix.count }
        return values.map { v in
            var name = lowerCamel(strip ? String(v.dropFirst(prefix.count)) : v)
            if let c = name.first, c.isNumber { name = "_" + name }
            if name == "unrecognized" { name = "unrecognized_" }
            return name
        }
    }

    /// Proto comment text as Swift doc comment lines at `indent`.
    static func docComment(_ text: String, indent: String) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }
        while let last = lines.last, last.trimmingCharacters(in: " ").isEmpty { lines.removeLast() }
        while let first = lines.first, first.trimmingCharacters(in: " ").isEmpty { lines.removeFirst() }
        if lines.isEmpty { return "" }
        return lines.map { line -> String in
            let t = line.hasPrefix(" ") ? String(line.dropFirst()) : line
            return t.isEmpty ? "\(indent)///\n" : "\(indent)/// \(t)\n"
        }.joined()
    }
}

extension String {
    func trimmingCharacters(in c: Character) -> String {
        var s = Substring(self)
        while s.first == c { s = s.dropFirst() }
        while s.last == c { s = s.dropLast() }
        return String(s)
    }
}
