import TowerProto

/// Why a carrier operation failed, as the rest of the server sees it.
///
/// `submissionState` is the field that keeps messages from being lost or sent twice: after
/// `.unknown`, resolve the message with `CarrierHost.queryStatus` before any resend.
public struct CarrierError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong; extensible, so switch with a default.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }

        /// The carrier had a temporary problem; retry with backoff.
        public static let transient = Code("transient")
        /// Too fast; retry after `retryAfter`. Nothing was sent.
        public static let rateLimited = Code("rate limited")
        /// Will never succeed as asked.
        public static let permanent = Code("permanent")
        /// Credentials refused or connection not configured.
        public static let auth = Code("auth")
        /// The plugin does not implement the operation.
        public static let unsupported = Code("unsupported")
        /// The caller cancelled and the plugin stopped before finishing.
        public static let cancelled = Code("cancelled")
        /// No answer within the timeout; the plugin was asked to cancel.
        public static let deadlineExceeded = Code("deadline exceeded")
        /// The plugin process died while the request was in flight.
        public static let pluginCrashed = Code("plugin crashed")
        /// The plugin is not running (restarting too often, shut down).
        public static let unavailable = Code("unavailable")
        /// The plugin broke the protocol (bad frame, stray output on stdout).
        public static let protocolViolation = Code("protocol violation")
        /// Host and plugin share no protocol version.
        public static let versionMismatch = Code("version mismatch")
        /// No executable `ctower-carrier-NAME` was found.
        public static let pluginNotFound = Code("plugin not found")
        /// The executable could not be started.
        public static let spawnFailed = Code("spawn failed")

        public var description: String { name }
    }

    /// Whether a failed send may have reached the carrier.
    public enum SubmissionState: Sendable, Hashable {
        /// Certainly not sent: a resend is safe.
        case notSubmitted
        /// The carrier has it: never resend.
        case submitted
        /// Unknown: ask `queryStatus` first.
        case unknown
    }

    public var code: Code
    public var message: String
    public var submissionState: SubmissionState
    /// The carrier's raw error code (e.g. "30007"), when it gave one.
    public var carrierCode: String
    /// For `.rateLimited`: wait at least this long.
    public var retryAfter: Duration?

    public init(
        _ code: Code, _ message: String, submissionState: SubmissionState = .unknown, carrierCode: String = "",
        retryAfter: Duration? = nil
    ) {
        self.code = code
        self.message = message
        self.submissionState = submissionState
        self.carrierCode = carrierCode
        self.retryAfter = retryAfter
    }

    public var description: String {
        var text = "carrier error (\(code)): \(message)"
        if !carrierCode.isEmpty { text += " [carrier code \(carrierCode)]" }
        return text
    }

    /// The host's form of a plugin's OperationError.
    init(_ error: Carrier_OperationError) {
        let code: Code =
            switch error.errorClass {
            case .transient: .transient
            case .rateLimited: .rateLimited
            case .permanent: .permanent
            case .auth: .auth
            case .unsupported: .unsupported
            case .cancelled: .cancelled
            case .unspecified, .unrecognized: .transient
            }
        let state: SubmissionState =
            switch error.submissionState {
            case .notSubmitted: .notSubmitted
            case .submitted: .submitted
            case .unknown: .unknown
            case .unspecified, .unrecognized:
                // Classes that by definition did nothing are safe; anything else stays in doubt.
                [Code.rateLimited, .unsupported, .auth].contains(code) ? .notSubmitted : .unknown
            }
        self.init(
            code, error.message.isEmpty ? "\(code)" : error.message, submissionState: state, carrierCode: error.carrierCode,
            retryAfter: error.retryAfter?.swiftDurationValue)
    }
}

extension Google_Protobuf_Duration {
    var swiftDurationValue: Duration { .seconds(seconds) + .nanoseconds(Int64(nanos)) }

    init(duration: Duration) {
        self.init()
        let (seconds, attoseconds) = duration.components
        self.seconds = seconds
        self.nanos = Int32(attoseconds / 1_000_000_000)
    }
}
