import Foundation
import TowerProto

/// What the conformance kit needs to know about a plugin beyond its executable: credentials and
/// settings for a working connection, where a test message may go, how to provoke a rate limit
/// or a slow send, and sample webhooks with valid signatures.
///
/// Read from a JSON file (`ctower carrier test PATH --config FILE`):
///
/// ```json
/// {
///   "credentials": {"account_sid": "AC…", "auth_token": "…"},
///   "settings": {"base_url": "http://127.0.0.1:8080"},
///   "send": {"from": "+15125550199", "to": "+15125550100", "body": "conformance"},
///   "rate_limit": {"settings": {"rate_limit_mps": "1"}, "to": "+15005550429"},
///   "slow_send": {"settings": {"latency_ms": "3000"}, "to": "+15005550998"},
///   "webhooks": [{"method": "POST", "url": "https://…", "headers": {"X-Twilio-Signature": "…"}, "body": "MessageSid=…"}]
/// }
/// ```
/// Scenarios whose section is missing are skipped.
public struct ConformanceConfiguration: Sendable {
    /// A variation of the connection or message that triggers a behaviour.
    public struct Variant: Sendable {
        public var settings: [String: String] = [:]
        public var to: String?
        public init(settings: [String: String] = [:], to: String? = nil) {
            self.settings = settings
            self.to = to
        }
    }

    /// A webhook as the carrier would send it, with a valid signature.
    public struct Webhook: Sendable {
        public var method = "POST"
        public var url: String
        public var headers: [(String, String)]
        public var body: [UInt8]
        public init(method: String = "POST", url: String, headers: [(String, String)], body: [UInt8]) {
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
        }
    }

    public var credentials: [String: String] = [:]
    public var settings: [String: String] = [:]
    public var sendFrom = "+15125550199"
    public var sendTo = "+15125550100"
    public var sendBody = "Control Tower conformance test"
    public var rateLimit: Variant?
    public var slowSend: Variant?
    public var webhooks: [Webhook] = []
    /// How long one scenario may take before it fails.
    public var scenarioTimeout: Duration = .seconds(30)

    public init() {}

    /// Parses the JSON form shown above.
    public init(json data: Data) throws {
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ConformanceConfigurationError(message: "the configuration must be a JSON object")
        }
        func strings(_ value: Any?, _ field: String) throws -> [String: String] {
            guard let value else { return [:] }
            guard let object = value as? [String: Any] else {
                throw ConformanceConfigurationError(message: "\(field) must be an object of strings")
            }
            return object.mapValues { "\($0)" }
        }
        func variant(_ value: Any?, _ field: String) throws -> Variant? {
            guard let object = value as? [String: Any] else { return nil }
            return Variant(settings: try strings(object["settings"], "\(field).settings"), to: object["to"] as? String)
        }
        credentials = try strings(root["credentials"], "credentials")
        settings = try strings(root["settings"], "settings")
        if let send = root["send"] as? [String: Any] {
            sendFrom = send["from"] as? String ?? sendFrom
            sendTo = send["to"] as? String ?? sendTo
            sendBody = send["body"] as? String ?? sendBody
        }
        rateLimit = try variant(root["rate_limit"], "rate_limit")
        slowSend = try variant(root["slow_send"], "slow_send")
        for (index, entry) in (root["webhooks"] as? [[String: Any]] ?? []).enumerated() {
            guard let url = entry["url"] as? String else {
                throw ConformanceConfigurationError(message: "webhooks[\(index)].url is required")
            }
            let headers = try strings(entry["headers"], "webhooks[\(index)].headers").sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            webhooks.append(
                Webhook(
                    method: entry["method"] as? String ?? "POST", url: url, headers: headers,
                    body: Array((entry["body"] as? String ?? "").utf8)))
        }
        if let seconds = root["scenario_timeout_seconds"] as? Double { scenarioTimeout = .milliseconds(Int(seconds * 1000)) }
    }
}

public struct ConformanceConfigurationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { "invalid conformance configuration: \(message)" }
}
