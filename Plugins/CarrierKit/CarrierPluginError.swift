import TowerProto

/// The error a plugin handler throws to answer a request with a classified failure. Anything
/// else a handler throws becomes TRANSIENT with an UNKNOWN submission state (the safe choice:
/// the host will ask QueryStatus before resending).
public struct CarrierPluginError: Error, Sendable, Hashable, CustomStringConvertible {
    public var errorClass: Carrier_ErrorClass
    public var carrierCode: String
    public var message: String
    public var retryAfter: Duration?
    public var submissionState: Carrier_SubmissionState

    public init(
        _ errorClass: Carrier_ErrorClass, _ message: String, carrierCode: String = "",
        retryAfter: Duration? = nil, submissionState: Carrier_SubmissionState = .notSubmitted
    ) {
        self.errorClass = errorClass
        self.message = message
        self.carrierCode = carrierCode
        self.retryAfter = retryAfter
        self.submissionState = submissionState
    }

    /// The operation is not implemented by this plugin.
    public static func unsupported(_ operation: String) -> CarrierPluginError {
        CarrierPluginError(.unsupported, "\(operation) is not supported by this carrier")
    }

    /// Too fast; nothing was sent.
    public static func rateLimited(retryAfter: Duration, carrierCode: String = "") -> CarrierPluginError {
        CarrierPluginError(.rateLimited, "rate limited; retry later", carrierCode: carrierCode, retryAfter: retryAfter)
    }

    /// The connection is unknown or its credentials were refused.
    public static func auth(_ message: String) -> CarrierPluginError {
        CarrierPluginError(.auth, message)
    }

    /// Cancelled (or past its deadline) before the carrier was involved.
    public static func cancelled(submissionState: Carrier_SubmissionState = .notSubmitted) -> CarrierPluginError {
        CarrierPluginError(.cancelled, "cancelled", submissionState: submissionState)
    }

    public var description: String { "\(errorClass.protoName ?? "\(errorClass.rawValue)"): \(message)" }

    /// The wire form.
    public var operationError: Carrier_OperationError {
        var error = Carrier_OperationError()
        error.errorClass = errorClass
        error.carrierCode = carrierCode
        error.message = message
        error.retryAfter = retryAfter.map(Google_Protobuf_Duration.init)
        error.submissionState = submissionState
        return error
    }
}
