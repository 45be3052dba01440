/// A failure inside OpenSSL or a rejected input (wrong key size, failed authentication). The
/// message never contains key material or plaintext.
public struct CryptoError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// OpenSSL reported an internal failure (out of memory, unavailable algorithm).
        case library
        /// A key, nonce or parameter has the wrong size or range.
        case invalidInput
        /// Ciphertext or tag did not authenticate: wrong key, or the data was altered.
        case authenticationFailed
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
