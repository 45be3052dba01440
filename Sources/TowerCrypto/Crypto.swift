/// Hashes, MACs, randomness and comparisons, all from OpenSSL.
public enum Crypto {
    /// Cryptographically secure random bytes.
    public static func randomBytes(_ count: Int) -> [UInt8] { OpenSSL.randomBytes(count) }

    public static func sha256(_ data: [UInt8]) -> [UInt8] { OpenSSL.digest("SHA256", data) }
    public static func sha256(_ text: String) -> [UInt8] { sha256(Array(text.utf8)) }

    public static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] { OpenSSL.hmac("SHA256", key: key, data: data) }
    /// HMAC-SHA1: what TOTP (RFC 6238) and Twilio's webhook signatures use.
    public static func hmacSHA1(key: [UInt8], data: [UInt8]) -> [UInt8] { OpenSSL.hmac("SHA1", key: key, data: data) }

    /// Compares secrets in time independent of where they differ.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool { OpenSSL.constantTimeEquals(a, b) }

    /// Lowercase hexadecimal.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
