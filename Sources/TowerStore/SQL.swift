import Foundation

/// A SQL statement whose interpolated values travel as bound parameters, never as SQL text.
///
/// ```swift
/// let sql: SQL = "SELECT id, name FROM leads WHERE county = \(county) AND score >= \(minScore)"
/// // text: SELECT id, name FROM leads WHERE county = $1 AND score >= $2
/// ```
/// Text that really must be spliced in needs a visible label: `\(unsafeRaw: fragment)`, or
/// `\(identifier: name)`, which quotes an identifier. Fragments compose: `\(otherSQL)` splices a
/// `SQL` value in and renumbers its parameters.
public struct SQL: Sendable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    enum Part: Sendable, Hashable {
        case text(String)
        case parameter(SQLBinding)
    }

    var parts: [Part]

    init(parts: [Part]) { self.parts = parts }

    public init(stringLiteral value: String) { parts = [.text(value)] }

    public init(stringInterpolation: StringInterpolation) { parts = stringInterpolation.parts }

    /// SQL text taken as-is. Never build it from user input.
    public init(unsafeRaw text: String) { parts = [.text(text)] }

    /// The statement text with `$1…$n` placeholders.
    public var text: String { rendered.text }

    /// The bound values, in placeholder order.
    public var bindings: [SQLBinding] { rendered.bindings }

    var rendered: (text: String, bindings: [SQLBinding]) {
        var text = ""
        var bindings: [SQLBinding] = []
        for part in parts {
            switch part {
            case .text(let fragment): text += fragment
            case .parameter(let binding):
                bindings.append(binding)
                text += "$\(bindings.count)"
            }
        }
        return (text, bindings)
    }

    /// The statement text only: bound values are never printed, so logging a `SQL` is safe.
    public var description: String { text }

    public static func + (lhs: SQL, rhs: SQL) -> SQL { SQL(parts: lhs.parts + rhs.parts) }

    /// Joins fragments with a separator, e.g. building `WHERE a = $1 AND b = $2`.
    public static func join(_ fragments: [SQL], separator: String) -> SQL {
        var parts: [Part] = []
        for (index, fragment) in fragments.enumerated() {
            if index > 0 { parts.append(.text(separator)) }
            parts += fragment.parts
        }
        return SQL(parts: parts)
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var parts: [Part] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            parts.reserveCapacity(interpolationCount * 2 + 1)
        }

        public mutating func appendLiteral(_ literal: String) {
            if !literal.isEmpty { parts.append(.text(literal)) }
        }

        /// A value, bound as a parameter.
        public mutating func appendInterpolation<Value: SQLEncodable>(_ value: Value) {
            parts.append(.parameter(value.sqlBinding))
        }

        /// An optional value, bound as a parameter (nil is NULL).
        public mutating func appendInterpolation<Value: SQLEncodable>(_ value: Value?) {
            parts.append(.parameter(value.sqlBinding))
        }

        /// A SQL fragment, spliced in with its own parameters.
        public mutating func appendInterpolation(_ fragment: SQL) {
            parts += fragment.parts
        }

        /// A double-quoted identifier (table, column, channel). Safe against injection.
        public mutating func appendInterpolation(identifier: String) {
            parts.append(.text(SQL.quoteIdentifier(identifier)))
        }

        /// Raw SQL text. The label is ugly on purpose: never pass user input here.
        public mutating func appendInterpolation(unsafeRaw text: String) {
            parts.append(.text(text))
        }
    }

    /// Quotes an identifier the way PostgreSQL's `quote_ident` does.
    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\0", with: "").replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Quotes a string literal for the few places where parameters are impossible (COPY, DDL).
    public static func quoteLiteral(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "\0", with: "").replacingOccurrences(of: "'", with: "''") + "'"
    }
}
