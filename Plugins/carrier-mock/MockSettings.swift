/// A mock connection's behaviour, read from Configure settings (credentials are consulted too,
/// so either map may carry them).
struct MockSettings: Sendable {
    /// Seeds every random decision.
    var seed: UInt64 = 1
    /// Fraction of accepted messages that end DELIVERED; the rest end UNDELIVERED.
    var deliveryRate = 1.0
    /// Fraction of Sends rejected at once with PERMANENT 21211 (nothing recorded).
    var failureRate = 0.0
    /// Time a Send takes before the message is accepted (cancellable).
    var latency: Duration = .zero
    /// Time between acceptance and the delivery status event.
    var deliveryDelay: Duration = .milliseconds(10)
    /// Sender numbers whose messages always end UNDELIVERED with the given carrier code
    /// (`error_code_for_sender=+15550001111=30007,+15550002222=30034`).
    var errorCodeForSender: [String: String] = [:]
    /// Accepted sends per second per connection; 0 means unlimited.
    var rateLimitMPS = 0.0
    /// Fraction of delivered messages that get a simulated reply.
    var replyRate = 0.0
    /// Where the ledger file lives; empty keeps it in memory only.
    var ledgerPath = ""
    /// Prints junk to stdout on every Send, to prove the stdout guard works.
    var noisy = false
    /// Emits delivery status events.
    var statusEvents = true
    /// Recognises repeated idempotency keys. `idempotent=false` imitates a carrier without
    /// idempotency (like Twilio): every Send is recorded, so the ledger exposes any resend the
    /// host should not have made.
    var idempotent = true
    /// Recipients who unsubscribed at the carrier: a Send to one is refused with PERMANENT 21610,
    /// as Twilio refuses it (`unsubscribed_recipients=+15550001111,+15550002222`).
    var unsubscribedRecipients: Set<String> = []
    /// The price per segment in millionths of `priceCurrency`, reported on a message's final
    /// delivery status and by QueryStatus once final (as Twilio prices a message once it is
    /// done). nil reports no price, like a carrier that never does.
    var pricePerSegmentMicros: Int64?
    var priceCurrency = "USD"
    /// False leaves the price off status events, so only QueryStatus reports it (like Twilio).
    var priceInStatusEvents = true
    /// Also puts the price on the Send answer, as a carrier that prices at submission does.
    var priceOnSend = false

    static let knownKeys: Set<String> = [
        "seed", "delivery_rate", "failure_rate", "latency_ms", "delivery_delay_ms", "error_code_for_sender",
        "rate_limit_mps", "reply_rate", "ledger_path", "noisy", "status_events", "idempotent", "api_key",
        "unsubscribed_recipients", "price_per_segment_micros", "price_currency", "price_in_status_events", "price_on_send",
    ]

    init() {}

    /// Parses `values`; problems become warnings rather than failures.
    init(_ values: [String: String], warnings: inout [String]) {
        func number(_ key: String) -> Double? {
            guard let text = values[key] else { return nil }
            guard let value = Double(text) else {
                warnings.append("\(key) must be a number")
                return nil
            }
            return value
        }
        if let text = values["seed"] {
            if let seed = UInt64(text) { self.seed = seed } else { self.seed = StableHash.fnv1a(text) }
        }
        if let v = number("delivery_rate") { deliveryRate = v }
        if let v = number("failure_rate") { failureRate = v }
        if let v = number("latency_ms") { latency = .milliseconds(v) }
        if let v = number("delivery_delay_ms") { deliveryDelay = .milliseconds(v) }
        if let v = number("rate_limit_mps") { rateLimitMPS = v }
        if let v = number("reply_rate") { replyRate = v }
        if let path = values["ledger_path"] { ledgerPath = path }
        if let text = values["noisy"] { noisy = text == "true" || text == "1" }
        if let text = values["idempotent"] { idempotent = !(text == "false" || text == "0") }
        if let text = values["status_events"] { statusEvents = !(text == "false" || text == "0") }
        if let text = values["unsubscribed_recipients"] {
            unsubscribedRecipients = Set(text.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty })
        }
        if let text = values["price_per_segment_micros"] {
            if let micros = Int64(text), micros >= 0 {
                pricePerSegmentMicros = micros
            } else {
                warnings.append("price_per_segment_micros must be a whole number of millionths, 0 or more")
            }
        }
        if let text = values["price_in_status_events"] { priceInStatusEvents = !(text == "false" || text == "0") }
        if let text = values["price_on_send"] { priceOnSend = text == "true" || text == "1" }
        if let text = values["price_currency"] {
            if text.count == 3, text.allSatisfy({ $0.isASCII && $0.isUppercase }) {
                priceCurrency = text
            } else {
                warnings.append("price_currency must be an ISO 4217 code such as USD")
            }
        }
        if let text = values["error_code_for_sender"] {
            for pair in text.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2 {
                    errorCodeForSender[String(parts[0]).trimmingSpaces] = String(parts[1]).trimmingSpaces
                } else {
                    warnings.append("error_code_for_sender entries look like +15550001111=30007")
                }
            }
        }
        for key in values.keys.sorted() where !Self.knownKeys.contains(key) {
            warnings.append("unknown setting \(key)")
        }
    }
}

extension String {
    var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
