import Foundation
import TowerCrypto

/// One `migrations/NNNN_name.sql` file.
public struct Migration: Sendable, Hashable {
    /// The `NNNN` prefix; migrations apply in this order.
    public let version: Int
    /// The file name, e.g. `0002_identity.sql`.
    public let fileName: String
    /// The SQL text, run as one transaction.
    public let sql: String
    /// Hex SHA-256 of the SQL text, recorded when applied.
    public let checksum: String

    public init(fileName: String, sql: String) throws {
        guard let version = Self.version(ofFileName: fileName) else {
            throw StoreError(
                .migration, "migration file \(fileName) is misnamed: expected NNNN_lowercase_name.sql, e.g. 0007_add_tags.sql")
        }
        self.version = version
        self.fileName = fileName
        self.sql = sql
        self.checksum = Crypto.hex(Crypto.sha256(sql))
    }

    static func version(ofFileName name: String) -> Int? {
        let scalars = Array(name.unicodeScalars)
        guard name.hasSuffix(".sql"), scalars.count > 9, scalars[4] == "_" else { return nil }
        guard scalars[0..<4].allSatisfy({ $0.properties.numericType != nil && $0.isASCII }) else { return nil }
        let stem = scalars[5..<(scalars.count - 4)]
        guard !stem.isEmpty, stem.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }) else {
            return nil
        }
        return Int(String(String.UnicodeScalarView(scalars[0..<4])))
    }

    /// Loads every `*.sql` file of `directory`, sorted by version. Other files are ignored.
    public static func load(from directory: String) throws -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw StoreError(.configuration, "cannot read the migrations folder \(directory)")
        }
        var migrations: [Migration] = []
        for name in names where name.hasSuffix(".sql") {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path), let sql = String(data: data, encoding: .utf8) else {
                throw StoreError(.migration, "cannot read migration \(name) as UTF-8")
            }
            migrations.append(try Migration(fileName: name, sql: sql))
        }
        return try sorted(migrations)
    }

    static func sorted(_ migrations: [Migration]) throws -> [Migration] {
        let ordered = migrations.sorted { $0.version < $1.version }
        for (previous, next) in zip(ordered, ordered.dropFirst()) where previous.version == next.version {
            throw StoreError(.migration, "migrations \(previous.fileName) and \(next.fileName) share version \(next.version)")
        }
        return ordered
    }
}
