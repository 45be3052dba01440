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
        /// Character offset of the problem (0-based; messages say "character offset + 1").
        public var offset: Int
        public var message: String
        /// The unknown variable's name, when that is the problem.
        public var variable: String?

        public init(offset: Int, message: String, variable: String? = nil) {
            self.offset = offset
            self.message = message
            self.variable = variable
        }
    }

    public init(parsing text: String, knownVariables: Set<String> = TemplateText.knownVariables) throws(ParseError) {
        let (parts, errors) = Self.parse(text, knownVariables: knownVariables)
        if let first = errors.first { throw first }
        self.parts = parts
    }

    /// Every problem in `text`, in order: unknown variables and unbalanced braces. Empty when the
    /// text parses. Save-time validation reports them all at once, not one per attempt.
    public static func problems(in text: String, knownVariables: Set<String> = TemplateText.knownVariables) -> [ParseError] {
        parse(text, knownVariables: knownVariables).errors
    }

    private static func parse(_ text: String, knownVariables: Set<String>) -> (parts: [Part], errors: [ParseError]) {
        var parts: [Part] = []
        var errors: [ParseError] = []
        var literal = ""
        var index = text.startIndex
        var offset = 0
        while index < text.endIndex {
            let ch = text[index]
            if ch == "{" {
                guard let close = text[index...].firstIndex(of: "}") else {
                    errors.append(
                        ParseError(
                            offset: offset,
                            message: "\"{\" at character \(offset + 1) is never closed; write {first_name} or {first_name|there}"))
                    break
                }
                let inner = String(text[text.index(after: index)..<close])
                let width = text[index...close].count
                defer {
                    offset += width
                    index = text.index(after: close)
                }
                if inner.contains("{") {
                    errors.append(ParseError(offset: offset, message: "placeholders cannot nest (character \(offset + 1))"))
                    continue
                }
                let pieces = inner.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(pieces[0]).trimmed(" ").lowercased()
                guard knownVariables.contains(name) else {
                    errors.append(
                        ParseError(
                            offset: offset,
                            message:
                                "unknown variable {\(name)} at character \(offset + 1); known: \(knownVariables.sorted().joined(separator: ", "))",
                            variable: name))
                    continue
                }
                if !literal.isEmpty {
                    parts.append(.literal(literal))
                    literal = ""
                }
                parts.append(.variable(name: name, fallback: pieces.count == 2 ? String(pieces[1]) : nil))
                continue
            }
            if ch == "}" { errors.append(ParseError(offset: offset, message: "\"}\" at character \(offset + 1) has no matching \"{\"")) }
            literal.append(ch)
            offset += 1
            index = text.index(after: index)
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        return (parts, errors)
    }

    public var variables: [String] {
        parts.compactMap { if case .variable(let name, _) = $0 { return name } else { return nil } }
    }

    /// The text with each variable replaced by its value; an empty or missing value uses the
    /// fallback, and a variable with neither drops out (with a doubled space collapsed).
    public func render(_ values: [String: String]) -> String { rendering(values).text }

    /// A rendered text and how each variable got its value.
    public struct Rendering: Sendable, Hashable {
        public var text: String
        /// Variables that had no value and used their fallback, in order of first use.
        public var fellBack: [String]
        /// Variables that had no value and no fallback, so dropped out, in order of first use.
        public var empty: [String]
    }

    public func rendering(_ values: [String: String]) -> Rendering {
        var out = Rendering(text: "", fellBack: [], empty: [])
        for part in parts {
            switch part {
            case .literal(let s): out.text += s
            case .variable(let name, let fallback):
                var value = values[name].flatMap { $0.trimmed(" ").isEmpty ? nil : $0 } ?? ""
                if value.isEmpty {
                    if let fallback, !fallback.isEmpty {
                        value = fallback
                        if !out.fellBack.contains(name) { out.fellBack.append(name) }
                    } else if !out.empty.contains(name) {
                        out.empty.append(name)
                    }
                }
                if value.isEmpty, out.text.hasSuffix(" ") { out.text.removeLast() }
                out.text += value
            }
        }
        return out
    }
}
