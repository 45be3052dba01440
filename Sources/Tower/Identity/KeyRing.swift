import Foundation
import TowerCrypto
import TowerProtoRuntime

/// The server's long-lived secrets: the key access tokens are signed with and the master key
/// that seals stored secrets (TOTP seeds, carrier credentials).
///
/// Read from `CTOWER_TOKEN_KEY` / `CTOWER_MASTER_KEY` (base64 of 32 bytes) when set, else from
/// `$CTOWER_HOME/keys/`, created with mode 0600 on first start. Several servers behind one load
/// balancer must share the same keys (set the environment variables).
public struct KeyRing: Sendable {
    public let tokenKey: [UInt8]
    public let masterKey: [UInt8]

    /// Seals and opens stored secrets with the master key.
    public let sealedBox: SealedBox

    /// - Throws: when either key is not 32 bytes.
    public init(tokenKey: [UInt8], masterKey: [UInt8]) throws(KeyRingError) {
        guard tokenKey.count == 32, masterKey.count == 32, let box = try? SealedBox(key: masterKey) else {
            throw KeyRingError(message: "the token key and the master key must be 32 bytes each")
        }
        self.tokenKey = tokenKey
        self.masterKey = masterKey
        self.sealedBox = box
    }

    public static func load(home: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> KeyRing {
        try KeyRing(
            tokenKey: try key(named: "token", variable: "CTOWER_TOKEN_KEY", home: home, environment: environment),
            masterKey: try key(named: "master", variable: "CTOWER_MASTER_KEY", home: home, environment: environment))
    }

    /// Fresh random keys, for tests.
    public static func ephemeral() -> KeyRing {
        // Both keys are 32 fresh bytes, which init accepts.
        try! KeyRing(tokenKey: Crypto.randomBytes(32), masterKey: Crypto.randomBytes(32))
    }

    public var signer: AccessTokenSigner { AccessTokenSigner(key: tokenKey) }

    static func key(named name: String, variable: String, home: String, environment: [String: String]) throws -> [UInt8] {
        if let text = environment[variable], !text.isEmpty {
            guard let key = Base64.decode(text), key.count == 32 else {
                throw KeyRingError(message: "\(variable) must be the base64 of 32 bytes (e.g. `openssl rand -base64 32`)")
            }
            return key
        }
        let dir = home + "/keys"
        let path = dir + "/\(name).key"
        let fm = FileManager.default
        if let data = fm.contents(atPath: path) {
            guard data.count == 32 else { throw KeyRingError(message: "\(path) must hold exactly 32 bytes; delete it to create a new one") }
            return [UInt8](data)
        }
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let key = Crypto.randomBytes(32)
        guard fm.createFile(atPath: path, contents: Data(key), attributes: [.posixPermissions: 0o600]) else {
            throw KeyRingError(message: "cannot write \(path); check that \(dir) is writable")
        }
        return key
    }
}

public struct KeyRingError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
