/// Message compression algorithms (`grpc-encoding`).
public struct CompressionAlgorithm: Sendable, Hashable, CustomStringConvertible {
    /// The `grpc-encoding` token.
    public let name: String

    public static let identity = CompressionAlgorithm(name: "identity")
    public static let gzip = CompressionAlgorithm(name: "gzip")

    /// What this library can encode and decode.
    static let supported: [CompressionAlgorithm] = [.identity, .gzip]

    init(name: String) { self.name = name }

    public init?(wireName: String) {
        guard let known = Self.supported.first(where: { $0.name == wireName }) else { return nil }
        self = known
    }

    public var description: String { name }

    /// Value for `grpc-accept-encoding`.
    static func acceptHeader(_ algorithms: [CompressionAlgorithm]) -> String {
        var names = ["identity"]
        for algorithm in algorithms where algorithm != .identity { names.append(algorithm.name) }
        return names.joined(separator: ",")
    }

    /// Parses a `grpc-accept-encoding` value.
    static func parseAccept(_ value: String) -> [CompressionAlgorithm] {
        value.split(separator: ",").compactMap {
            CompressionAlgorithm(wireName: $0.trimmingSpaces())
        }
    }

    func compress(_ bytes: [UInt8]) throws(RPCError) -> [UInt8] {
        switch self {
        case .gzip: return try Gzip.compress(bytes)
        default: return bytes
        }
    }

    /// Decompresses, refusing output larger than `limit` (a zip bomb must not exhaust memory).
    func decompress(_ bytes: [UInt8], limit: Int) throws(RPCError) -> [UInt8] {
        switch self {
        case .gzip: return try Gzip.decompress(bytes, limit: limit)
        default: return bytes
        }
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
