import TowerProtoRuntime

/// gRPC metadata: ordered key/value pairs with lowercased keys. Keys ending in `-bin` carry bytes
/// (base64 on the wire); all others carry printable ASCII.
public struct Metadata: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    public enum Value: Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
        case string(String)
        case binary([UInt8])

        public init(stringLiteral value: String) { self = .string(value) }

        /// The text of a string value; nil for binary values.
        public var stringValue: String? {
            if case .string(let text) = self { return text }
            return nil
        }

        /// The bytes of a binary value, or the UTF-8 of a string value.
        public var bytes: [UInt8] {
            switch self {
            case .string(let text): return Array(text.utf8)
            case .binary(let bytes): return bytes
            }
        }

        public var description: String {
            switch self {
            case .string(let text): return text
            case .binary(let bytes): return "<\(bytes.count) bytes>"
            }
        }
    }

    public struct Element: Sendable, Hashable {
        public var key: String
        public var value: Value
    }

    private var elements: [Element]

    public init() { elements = [] }

    public init(dictionaryLiteral pairs: (String, Value)...) {
        elements = pairs.map { Element(key: $0.0.lowercased(), value: $0.1) }
    }

    public var count: Int { elements.count }
    public var isEmpty: Bool { elements.isEmpty }

    public mutating func add(_ key: String, _ value: Value) {
        elements.append(Element(key: key.lowercased(), value: value))
    }

    public mutating func add(_ key: String, _ value: String) { add(key, .string(value)) }
    public mutating func add(_ key: String, _ bytes: [UInt8]) { add(key, .binary(bytes)) }

    /// Appends every entry of `other`.
    public mutating func add(contentsOf other: Metadata) { elements.append(contentsOf: other.elements) }

    /// Replaces every value of `key` with one value.
    public mutating func replace(_ key: String, _ value: Value) {
        remove(key)
        add(key, value)
    }

    public func first(_ key: String) -> Value? {
        let key = key.lowercased()
        return elements.first { $0.key == key }?.value
    }

    /// The first value of `key` as text (nil if absent or binary).
    public func firstString(_ key: String) -> String? { first(key)?.stringValue }

    public func values(_ key: String) -> [Value] {
        let key = key.lowercased()
        return elements.filter { $0.key == key }.map(\.value)
    }

    public func contains(_ key: String) -> Bool { first(key) != nil }

    public mutating func remove(_ key: String) {
        let key = key.lowercased()
        elements.removeAll { $0.key == key }
    }

    public func makeIterator() -> IndexingIterator<[Element]> { elements.makeIterator() }
}

extension Metadata: CustomStringConvertible {
    public var description: String {
        "[" + elements.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "]"
    }
}

// MARK: - Wire form

extension Metadata {
    /// Whether a received header is transport-level and stays out of user metadata.
    static func isReserved(_ name: String) -> Bool {
        guard let first = name.utf8.first else { return true }
        if first == UInt8(ascii: ":") { return true }
        switch name {
        case "content-type", "te", "content-length", "connection", "host", "keep-alive", "transfer-encoding",
            "upgrade", "proxy-connection":
            return true
        default:
            return name.hasPrefix("grpc-")
        }
    }

    static func isValidKey(_ key: String) -> Bool {
        !key.isEmpty
            && key.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
            }
    }

    /// Adds one received header. `-bin` values are base64 (padded or not) and may be comma-joined
    /// repeats; undecodable ones are dropped rather than passed on garbled.
    mutating func addWireHeader(name: String, value: String) {
        if name.hasSuffix("-bin") {
            for part in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                if let bytes = Base64.decode(part) {
                    elements.append(Element(key: name, value: .binary(bytes)))
                }
            }
        } else {
            elements.append(Element(key: name, value: .string(value)))
        }
    }

    /// The entries as HTTP/2 header fields, skipping invalid keys and reserved names.
    func forEachWireHeader(_ body: (String, String) -> Void) {
        for element in elements {
            guard Self.isValidKey(element.key), !Self.isReserved(element.key) else { continue }
            if element.key.hasSuffix("-bin") {
                body(element.key, Base64.encode(element.value.bytes, padded: false))
            } else {
                switch element.value {
                case .string(let text):
                    body(element.key, Self.sanitizedASCII(text))
                case .binary:
                    continue  // bytes need a -bin key; there is no faithful ASCII form
                }
            }
        }
    }

    private static func sanitizedASCII(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) { return text }
        return String(decoding: text.utf8.filter { $0 >= 0x20 && $0 <= 0x7E }, as: UTF8.self)
    }
}
