import TowerCrypto
import TowerProtoRuntime

/// Twilio's request signature (`X-Twilio-Signature`): base64 of HMAC-SHA1, keyed with the
/// account's auth token, over the full URL followed by every POST parameter as name + value,
/// sorted by name (and, for repeated names, by value).
///
/// Proxies and load balancers disagree about whether the default port belongs in the URL, so
/// a signature is accepted if it matches the URL with or without an explicit :443 / :80.
public enum TwilioSignature {
    /// The signature Twilio computes for a request to `url` with form `parameters`.
    public static func compute(authToken: String, url: String, parameters: [(String, String)]) -> String {
        var data = Array(url.utf8)
        for (name, values) in sortedParameters(parameters) {
            for value in values {
                data += Array(name.utf8)
                data += Array(value.utf8)
            }
        }
        return Base64.encode(Crypto.hmacSHA1(key: Array(authToken.utf8), data: data))
    }

    /// True when `signature` matches `url` (as given, with the default port, or without it) and
    /// `parameters`. Comparison is constant-time.
    public static func isValid(signature: String, authToken: String, url: String, parameters: [(String, String)]) -> Bool {
        guard !signature.isEmpty, !authToken.isEmpty else { return false }
        let expected = Array(signature.utf8)
        var matched = false
        for candidate in urlVariants(url) {
            let computed = Array(compute(authToken: authToken, url: candidate, parameters: parameters).utf8)
            // Evaluate every variant (no early exit) so timing does not reveal which one matched.
            if Crypto.constantTimeEquals(computed, expected) { matched = true }
        }
        return matched
    }

    /// `url` as given, plus the form with the scheme's default port added or removed.
    static func urlVariants(_ url: String) -> [String] {
        let parts = url.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return [url] }
        let scheme = parts[0].lowercased()
        let defaultPort: String
        switch scheme {
        case "https": defaultPort = "443"
        case "http": defaultPort = "80"
        default: return [url]
        }
        let rest = parts[1]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let tail = String(rest[authorityEnd...])
        let prefix = String(parts[0]) + "://"
        // Split off the userinfo, then the port (IPv6 literals keep their brackets).
        let hostStart = authority.lastIndex(of: "@").map { authority.index(after: $0) } ?? authority.startIndex
        let userinfo = String(authority[..<hostStart])
        let hostAndPort = authority[hostStart...]
        var host = String(hostAndPort)
        var port: String? = nil
        if let colon = hostAndPort.lastIndex(of: ":"), !hostAndPort[colon...].contains("]") {
            host = String(hostAndPort[..<colon])
            port = String(hostAndPort[hostAndPort.index(after: colon)...])
        }
        let withPort: String = prefix + userinfo + host + ":" + defaultPort + tail
        let withoutPort: String = prefix + userinfo + host + tail
        guard let port else { return [url, withPort] }
        return port == defaultPort ? [url, withoutPort] : [url]
    }

    /// Parameters grouped by name, names sorted, each name's distinct values sorted — the order
    /// Twilio's own validators use. Sorting is by UTF-8 bytes, i.e. by code point.
    static func sortedParameters(_ parameters: [(String, String)]) -> [(String, [String])] {
        var grouped: [String: Set<String>] = [:]
        for (name, value) in parameters { grouped[name, default: []].insert(value) }
        return grouped.keys.sorted(by: utf8Less).map { name in (name, grouped[name]!.sorted(by: utf8Less)) }
    }

    private static func utf8Less(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}
