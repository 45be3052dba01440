/// Password hashing with scrypt (RFC 7914) at OWASP's recommended cost, in a self-describing
/// string so the cost can rise later without breaking stored hashes:
/// `$scrypt$ln=17,r=8,p=1$<salt base64>$<hash base64>`.
public struct PasswordHasher: Sendable {
    public struct Cost: Sendable, Hashable {
        /// log2 of N.
        public var logN: Int
        public var r: Int
        public var p: Int

        /// OWASP Password Storage Cheat Sheet: N = 2^17 (128 MiB), r = 8, p = 1.
        public static let owasp = Cost(logN: 17, r: 8, p: 1)
        /// Cheap parameters for tests only.
        public static let testing = Cost(logN: 10, r: 8, p: 1)

        public init(logN: Int, r: Int, p: Int) {
            self.logN = logN
            self.r = r
            self.p = p
        }
    }

    public let cost: Cost

    public init(cost: Cost = .owasp) { self.cost = cost }

    public func hash(_ password: String) throws(CryptoError) -> String {
        let salt = Crypto.randomBytes(16)
        let derived = try derive(password, salt: salt, cost: cost)
        return "$scrypt$ln=\(cost.logN),r=\(cost.r),p=\(cost.p)$\(base64(salt))$\(base64(derived))"
    }

    /// Whether `password` matches `encoded`, compared in constant time. Malformed hashes never match.
    public func verify(_ password: String, against encoded: String) -> Bool {
        guard let (cost, salt, expected) = Self.parse(encoded),
            let derived = try? derive(password, salt: salt, cost: cost, length: expected.count)
        else { return false }
        return Crypto.constantTimeEquals(derived, expected)
    }

    /// Whether a stored hash should be recomputed at the current cost at the next login.
    public func needsRehash(_ encoded: String) -> Bool {
        guard let (stored, _, _) = Self.parse(encoded) else { return true }
        return stored != cost
    }

    private func derive(_ password: String, salt: [UInt8], cost: Cost, length: Int = 32) throws(CryptoError) -> [UInt8] {
        guard (1...22).contains(cost.logN), cost.r > 0, cost.p > 0 else { throw CryptoError(.invalidInput, "scrypt cost out of range") }
        return try OpenSSL.scrypt(
            password: Array(password.utf8), salt: salt, n: 1 << UInt64(cost.logN), r: UInt64(cost.r), p: UInt64(cost.p), length: length)
    }

    static func parse(_ encoded: String) -> (Cost, [UInt8], [UInt8])? {
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "scrypt" else { return nil }
        var values: [String: Int] = [:]
        for kv in parts[2].split(separator: ",") {
            let pair = kv.split(separator: "=")
            guard pair.count == 2, let v = Int(pair[1]) else { return nil }
            values[String(pair[0])] = v
        }
        guard let ln = values["ln"], let r = values["r"], let p = values["p"],
            let salt = unbase64(String(parts[3])), let hash = unbase64(String(parts[4])), hash.count >= 16
        else { return nil }
        return (Cost(logN: ln, r: r, p: p), salt, hash)
    }
}

/// PBKDF2-HMAC-SHA256, for interop with systems that store it (OWASP: 600,000 iterations).
public enum PBKDF2 {
    public static func sha256(password: String, salt: [UInt8], iterations: Int, length: Int = 32) throws(CryptoError) -> [UInt8] {
        guard iterations > 0, length > 0 else { throw CryptoError(.invalidInput, "PBKDF2 needs iterations and length > 0") }
        return try OpenSSL.pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations, length: length)
    }
}
