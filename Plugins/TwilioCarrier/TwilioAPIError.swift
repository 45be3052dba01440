import CarrierKit
import TowerHTTPClient
import TowerProto
import TowerProtoRuntime

/// Classifies Twilio REST failures for the host: what to do next, and whether the operation may
/// have taken effect at Twilio.
enum TwilioAPIError {
    /// Twilio's error body: `{"code": 21211, "message": "...", "more_info": "...", "status": 400}`.
    struct Body {
        var code: String
        var message: String
    }

    static func body(_ response: HTTPResponse) -> Body {
        guard let json = try? JSONValue.parse(response.text) else { return Body(code: "", message: "") }
        var code = ""
        switch json["code"] {
        case .number(let n)?: code = n
        case .string(let s)?: code = s
        default: break
        }
        var message = ""
        if case .string(let text)? = json["message"] { message = text }
        return Body(code: code, message: message)
    }

    /// The error for a non-2xx answer to a request that creates something (Send, Purchase).
    static func classify(_ response: HTTPResponse, operation: String) -> CarrierPluginError {
        let body = body(response)
        let detail = body.message.isEmpty ? "HTTP \(response.status)" : "HTTP \(response.status): \(body.message)"
        if response.status == 429 || body.code == "20429" {
            // Twilio refuses these before processing: nothing was created.
            let retryAfter = retryAfter(response.header("Retry-After")) ?? .seconds(1)
            var error = CarrierPluginError.rateLimited(retryAfter: retryAfter, carrierCode: body.code.isEmpty ? "20429" : body.code)
            error.message = "Twilio rate limit (\(detail))"
            return error
        }
        if response.status == 401 || response.status == 403 || body.code == "20003" {
            return CarrierPluginError(.auth, "Twilio refused the credentials for \(operation) (\(detail))", carrierCode: body.code)
        }
        if (400..<500).contains(response.status) {
            // Twilio validates before creating: a 4xx means nothing was created.
            return CarrierPluginError(.permanent, "Twilio rejected \(operation) (\(detail))", carrierCode: body.code)
        }
        // 5xx: Twilio may have created the resource before failing to answer.
        return CarrierPluginError(
            .transient, "Twilio failed during \(operation) (\(detail))", carrierCode: body.code, submissionState: .unknown)
    }

    /// The error for a transport failure: safe to retry only if the request never left.
    static func transport(_ error: HTTPClientError, operation: String) -> CarrierPluginError {
        let state: Carrier_SubmissionState = error.delivery == .notSent ? .notSubmitted : .unknown
        if error.code == .cancelled {
            return CarrierPluginError(.cancelled, "\(operation) cancelled (\(error.code))", submissionState: state)
        }
        return CarrierPluginError(.transient, "\(operation): \(error.code): \(error.message)", submissionState: state)
    }

    /// Retry-After as delta-seconds (Twilio never sends an HTTP date here).
    static func retryAfter(_ header: String?) -> Duration? {
        guard let header, let seconds = Double(header.trimmingSpaces), seconds >= 0 else { return nil }
        return .milliseconds(Int64(seconds * 1000))
    }
}

extension String {
    var trimmingSpaces: String {
        var text = Substring(self)
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return String(text)
    }
}
