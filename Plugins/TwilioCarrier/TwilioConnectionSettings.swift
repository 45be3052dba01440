import CarrierKit
import TowerProto

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One tenant's Twilio connection, from Configure.
public struct TwilioConnectionSettings: Sendable, Hashable, CustomStringConvertible {
    public var accountSID: String
    public var authToken: String
    /// Scheme, host and optional port of the REST API, no trailing slash.
    public var baseURL: String
    public var messagingServiceSID: String
    /// Default StatusCallback when a Send names none.
    public var statusCallbackURL: String
    public var requestTimeout: Duration
    public var connectTimeout: Duration

    static let knownSettings: Set<String> = [
        "base_url", "messaging_service_sid", "status_callback_url", "request_timeout_ms", "connect_timeout_ms",
    ]

    /// Validates a Configure request; unknown settings become warnings.
    public init(_ request: Carrier_ConfigureRequest, warnings: inout [String]) throws(CarrierPluginError) {
        let sid = request.credentials["account_sid", default: ""]
        let token = request.credentials["auth_token", default: ""]
        guard !sid.isEmpty, !token.isEmpty else {
            throw CarrierPluginError.auth("credentials account_sid and auth_token are both required")
        }
        guard sid.hasPrefix("AC"), sid.count == 34, sid.utf8.allSatisfy({ $0 < 128 }) else {
            throw CarrierPluginError.auth("account_sid must be a Twilio account SID (AC followed by 32 hex digits)")
        }
        accountSID = sid
        authToken = token
        var base = request.settings["base_url", default: "https://api.twilio.com"]
        while base.hasSuffix("/") { base.removeLast() }
        guard base.hasPrefix("https://") || base.hasPrefix("http://") else {
            throw CarrierPluginError(.permanent, "setting base_url must start with https:// (or http:// for a local test server)")
        }
        baseURL = base
        messagingServiceSID = request.settings["messaging_service_sid", default: ""]
        statusCallbackURL = request.settings["status_callback_url", default: ""]
        requestTimeout = .milliseconds(Int(request.settings["request_timeout_ms", default: ""]) ?? 15_000)
        connectTimeout = .milliseconds(Int(request.settings["connect_timeout_ms", default: ""]) ?? 5_000)
        for key in request.settings.keys.sorted() where !Self.knownSettings.contains(key) {
            warnings.append("unknown setting \(key) (known: \(Self.knownSettings.sorted().joined(separator: ", ")))")
        }
        for key in request.credentials.keys.sorted() where key != "account_sid" && key != "auth_token" {
            warnings.append("unknown credential \(key) ignored")
        }
    }

    /// `{base}/2010-04-01/Accounts/{sid}` — every resource hangs below it.
    var accountURL: String { "\(baseURL)/2010-04-01/Accounts/\(accountSID)" }

    public var description: String { "TwilioConnectionSettings(\(accountSID), base \(baseURL), token <redacted>)" }
}

/// Wall-clock seconds since the Unix epoch.
enum WallClock {
    static func now() -> (seconds: Int64, nanos: Int32) {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return (Int64(spec.tv_sec), Int32(spec.tv_nsec))
    }

    static func timestamp() -> Google_Protobuf_Timestamp {
        var timestamp = Google_Protobuf_Timestamp()
        (timestamp.seconds, timestamp.nanos) = now()
        return timestamp
    }
}
