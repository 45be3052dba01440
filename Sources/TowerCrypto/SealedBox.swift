/// AES-256-GCM with a random 96-bit nonce: how carrier credentials and other secrets are stored.
///
/// The stored form is `version(1) || nonce(12) || ciphertext || tag(16)`. Associated data (for
/// example the row's org and id) binds a ciphertext to its place, so a value copied to another
/// row does not decrypt.
public struct SealedBox: Sendable {
    static let version: UInt8 = 1
    private let key: [UInt8]

    /// - Parameter key: 32 bytes.
    public init(key: [UInt8]) throws(CryptoError) {
        guard key.count == 32 else { throw CryptoError(.invalidInput, "AES-256 keys are 32 bytes, got \(key.count)") }
        self.key = key
    }

    public func seal(_ plaintext: [UInt8], associatedData: [UInt8] = []) throws(CryptoError) -> [UInt8] {
        let nonce = Crypto.randomBytes(12)
        let (ciphertext, tag) = try OpenSSL.aes256GCMSeal(key: key, nonce: nonce, plaintext: plaintext, aad: associatedData)
        return [Self.version] + nonce + ciphertext + tag
    }

    public func open(_ sealed: [UInt8], associatedData: [UInt8] = []) throws(CryptoError) -> [UInt8] {
        guard sealed.count >= 1 + 12 + 16, sealed[0] == Self.version else {
            throw CryptoError(.invalidInput, "not a sealed value of version \(Self.version)")
        }
        let nonce = Array(sealed[1..<13])
        let ciphertext = Array(sealed[13..<(sealed.count - 16)])
        let tag = Array(sealed[(sealed.count - 16)...])
        return try OpenSSL.aes256GCMOpen(key: key, nonce: nonce, ciphertext: ciphertext, tag: tag, aad: associatedData)
    }

    /// Raw AES-256-GCM with a caller-chosen nonce, for test vectors and interop.
    public static func seal(key: [UInt8], nonce: [UInt8], plaintext: [UInt8], associatedData: [UInt8]) throws(CryptoError) -> (
        ciphertext: [UInt8], tag: [UInt8]
    ) {
        guard key.count == 32 else { throw CryptoError(.invalidInput, "AES-256 keys are 32 bytes, got \(key.count)") }
        return try OpenSSL.aes256GCMSeal(key: key, nonce: nonce, plaintext: plaintext, aad: associatedData)
    }
}
