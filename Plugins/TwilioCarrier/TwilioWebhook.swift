import TowerHTTPClient
import TowerProto

/// A Twilio callback (status callback or incoming message), verified and normalised.
public struct TwilioWebhook: Sendable {
    /// Whether `X-Twilio-Signature` matched.
    public var verified: Bool
    /// The normalised event; nil when unverified or when the callback is neither kind.
    public var event: Carrier_Event.Kind?
    /// The raw Twilio status of a status callback ("delivered"), for precedence checks.
    public var status: String

    /// The parameter in our StatusCallback URLs that carries the idempotency key.
    public static let idempotencyKeyParameter = "ik"

    /// Verifies and parses `request` with the connection's auth token. Unknown fields are ignored.
    public init(_ request: Carrier_ParseWebhookRequest, authToken: String) {
        let signature = request.headers.first { $0.name.lowercased() == "x-twilio-signature" }?.value ?? ""
        let isForm = request.method.uppercased() == "POST"
        let bodyParameters = isForm ? FormEncoding.decode(String(decoding: request.body, as: UTF8.self)) : []
        verified = TwilioSignature.isValid(signature: signature, authToken: authToken, url: request.url, parameters: bodyParameters)
        status = ""
        event = nil
        guard verified else { return }
        // Twilio sends GET callbacks with the fields in the query string instead of the body.
        let queryParameters = Self.query(of: request.url)
        let fields = isForm ? bodyParameters : queryParameters
        func field(_ name: String) -> String { fields.last { $0.0 == name }?.1 ?? "" }

        let messageStatus = field("MessageStatus").isEmpty ? field("SmsStatus") : field("MessageStatus")
        let sid = field("MessageSid").isEmpty ? field("SmsSid") : field("MessageSid")
        guard !sid.isEmpty else { return }
        let lowered = messageStatus.lowercased()
        if lowered == "received" || lowered == "receiving" || (messageStatus.isEmpty && !field("Body").isEmpty) {
            var inbound = Carrier_InboundMessage()
            inbound.carrierEventID = sid
            inbound.providerMessageID = sid
            inbound.from = field("From")
            inbound.to = field("To")
            inbound.body = field("Body")
            let mediaCount = min(Int(field("NumMedia")) ?? 0, 50)
            inbound.mediaUrls = (0..<mediaCount).map { field("MediaUrl\($0)") }.filter { !$0.isEmpty }
            inbound.receiveTime = WallClock.timestamp()
            event = .inboundMessage(inbound)
            status = lowered
            return
        }
        guard !messageStatus.isEmpty else { return }
        var delivery = Carrier_DeliveryStatus()
        delivery.carrierEventID = "\(sid):\(lowered)"
        delivery.providerMessageID = sid
        delivery.idempotencyKey = queryParameters.last { $0.0 == Self.idempotencyKeyParameter }?.1 ?? ""
        delivery.state = TwilioMessageStatus.deliveryState(lowered)
        delivery.carrierStatus = messageStatus
        delivery.errorCode = field("ErrorCode")
        delivery.errorMessage = field("ErrorMessage")
        delivery.occurTime = WallClock.timestamp()
        delivery.from = field("From")
        delivery.to = field("To")
        event = .deliveryStatus(delivery)
        status = lowered
    }

    /// The decoded query string of `url` (empty when it has none).
    static func query(of url: String) -> [(String, String)] {
        guard let question = url.firstIndex(of: "?") else { return [] }
        var query = url[url.index(after: question)...]
        if let hash = query.firstIndex(of: "#") { query = query[..<hash] }
        return FormEncoding.decode(String(query))
    }

    /// Empty TwiML: "received, nothing to reply" (auto-replies are the server's business).
    static let emptyTwiML = Array(#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#.utf8)
}
