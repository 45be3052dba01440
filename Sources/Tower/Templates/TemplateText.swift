/// A message template's text: literal parts and `{variable}` / `{variable|fallback}` placeholders.
///
/// Parsing happens at save time so an unknown variable or a broken brace is rejected with its
/// position, long before a campaign renders thousands of messages.
public struct TemplateText: Sendable, Hashable {
    public enum Part: Sendable, Hashable {
        case literal(String)
        case variable(name: String, fallback: String?)
    }

    /// The variables a template may use, from lead and org data.
    public static let knownVariables: Set<String> = [
        "first_name", "last_name", "full_name", "brand", "county", "state", "property_address", "property_city",
        "mailing_city", "acreage", "apn", "agent_name", "phone",
    ]

    public let parts: [Part]

    public struct ParseError: Error, Sendable, Hashable {
        /// Character offset of the problem.
        public var offset: Int
        public var message: String
    }

    public init(parsing text: String, knownVariables: Set<String> = TemplateText.knownVariables) throws(ParseError) {
        var parts: [Part] = []
        var literal = ""
        var index = text.startIndex
        var offset = 0
        while index < text.endIndex {
            let ch = text[index]
            if ch == "{" {
                guard let close = text[index...].firstIndex(of: "}") else {
                    throw ParseError(
                        offset: offset,
                        message: "\"{\" at character \(offset + 1) is never closed; write {first_name} or {first_name|there}")
                }
                let inner = String(text[text.index(after: index)..<close])
                if inner.contains("{") { throw ParseError(offset: offset, message: "placeholders cannot nest (character \(offset + 1))") }
                let pieces = inner.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(pieces[0]).trimmed(" ").lowercased()
                guard knownVariables.contains(name) else {
                    throw ParseError(
                        offset: offset,
                        message:
                            "unknown variable {\(name)} at character \(offset + 1); known: \(knownVariables.sorted().joined(separator: ", "))"
                    )
                }
                if !literal.isEmpty { parts.append(.literal(literal)); literal = "" }
                parts.append(.variable(name: name, fallback: pieces.count == 2 ? String(pieces[1]) : nil))
                offset += text[index...close].count
                index = text.index(after: close)
                continue
            }
            if ch == "}" { throw ParseError(offset: offset, message: "\"}\" at character \(offset + 1) has no matching \"{\"") }
            literal.append(ch)
            offset += 1
            index = text.index(after: index)
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    public var variables: [String] {
        parts.compactMap { if case .variable(let name, _) = $0 { return name } else { return nil } }
    }

    /// The text with each variable replaced by its value; an empty or missing value uses the
    /// fallback, and a variable with neither drops out (with a doubled space collapsed).
    public func render(_ values: [String: String]) -> String {
        var out = ""
        for part in parts {
            switch part {
            case .literal(let s): out += s
            case .variable(let name, let fallback):
                let value = values[name].flatMap { $0.trimmed(" ").isEmpty ? nil : $0 } ?? fallback ?? ""
                if value.isEmpty, out.hasSuffix(" ") { out.removeLast() }
                out += value
            }
        }
        return out
    }
}
