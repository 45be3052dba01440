import CarrierKit
import Synchronization
import TowerHTTPClient
import TowerProto
import TowerProtoRuntime

/// The Twilio carrier: Twilio's Messages API over libcurl, webhooks verified with
/// `X-Twilio-Signature`, and number inventory through (Available|Incoming)PhoneNumbers.
///
/// Twilio has no idempotency key on message creation. Send therefore (1) reports honestly
/// whether Twilio may have the message (`submission_state`), (2) carries the idempotency key in
/// the StatusCallback URL (`?ik=KEY`), so every status callback names it, and (3) QueryStatus
/// finds a message by sid when this process learnt it, else by listing the recipient's recent
/// outbound messages. See "Twilio" in docs/carrier-protocol.md for the limits.
public final class TwilioCarrier: CarrierPlugin {
    public let name = "twilio"
    public let version = "1.0.0"
    public let capabilities: [Carrier_Capability] = [
        .sendSms, .sendMms, .webhookParsing, .queryStatus, .numberSearch, .numberPurchase, .numberRelease, .accountCheck,
        .priceQuery,
    ]
    public let maxInFlight = 32
    /// A US 10DLC number sends about one segment per second.
    public let suggestedMPS = 1.0

    /// What this process knows about a Send, by idempotency key.
    struct SendRecord: Sendable {
        var to: String
        var from: String
        var startedAt: Int64
        var body: String? = nil
        var sid: String?
    }

    private struct State {
        var connections: [String: TwilioConnectionSettings] = [:]
        var sends = BoundedMap<String, SendRecord>(capacity: 50_000)  // "connection\u{1f}key"
        var statuses = BoundedMap<String, String>(capacity: 100_000)  // "connection\u{1f}sid" -> highest status
        var owners = BoundedMap<String, String>(capacity: 100_000)  // "connection\u{1f}sid" -> idempotency key

        /// Remembers that `sid` is the message sent with `key`.
        mutating func learn(connection: String, key: String, sid: String) {
            if sends[connection + "\u{1f}" + key] == nil {
                sends[connection + "\u{1f}" + key] = SendRecord(to: "", from: "", startedAt: 0, sid: sid)
            } else {
                sends[connection + "\u{1f}" + key]?.sid = sid
            }
            owners[connection + "\u{1f}" + sid] = key
        }
        var lastThrottle: [String: ContinuousClock.Instant] = [:]
    }

    private let state = Mutex(State())
    private let http: HTTPClient

    public init(http: HTTPClient = HTTPClient()) {
        self.http = http
    }

    // MARK: Connections

    public func configure(_ request: Carrier_ConfigureRequest, context: RequestContext) async throws -> Carrier_ConfigureResponse {
        var warnings: [String] = []
        let settings = try TwilioConnectionSettings(request, warnings: &warnings)
        state.withLock { $0.connections[context.connectionID] = settings }
        context.log.info("configured", metadata: ["connection": context.connectionID, "account": settings.accountSID])
        var response = Carrier_ConfigureResponse()
        response.warnings = warnings
        return response
    }

    public func removeConnection(context: RequestContext) async throws -> Carrier_RemoveConnectionResponse {
        state.withLock { _ = $0.connections.removeValue(forKey: context.connectionID) }
        return Carrier_RemoveConnectionResponse()
    }

    private func settings(_ context: RequestContext) throws(CarrierPluginError) -> TwilioConnectionSettings {
        guard let settings = state.withLock({ $0.connections[context.connectionID] }) else {
            throw CarrierPluginError.auth("connection \(context.connectionID) is not configured")
        }
        return settings
    }

    // MARK: Send

    public func send(_ request: Carrier_SendRequest, context: RequestContext) async throws -> Carrier_SendResponse {
        let settings = try settings(context)
        guard !request.idempotencyKey.isEmpty else { throw CarrierPluginError(.permanent, "idempotency_key is required") }
        guard !request.to.isEmpty else { throw CarrierPluginError(.permanent, "to is required (E.164, e.g. +15125550100)") }
        guard !request.from.isEmpty || !settings.messagingServiceSID.isEmpty else {
            throw CarrierPluginError(.permanent, "from is required unless the connection sets messaging_service_sid")
        }
        var fields: [(String, String)] = [("To", request.to)]
        if !request.from.isEmpty { fields.append(("From", request.from)) }
        if !settings.messagingServiceSID.isEmpty { fields.append(("MessagingServiceSid", settings.messagingServiceSID)) }
        if !request.body.isEmpty { fields.append(("Body", request.body)) }
        for url in request.mediaUrls { fields.append(("MediaUrl", url)) }
        let callback = request.statusCallbackURL.isEmpty ? settings.statusCallbackURL : request.statusCallbackURL
        if !callback.isEmpty {
            fields.append(("StatusCallback", Self.callbackURL(callback, idempotencyKey: request.idempotencyKey)))
        }
        let now = WallClock.now().seconds
        if let expire = request.expireTime {
            let remaining = expire.seconds - now
            guard remaining >= 1 else { throw CarrierPluginError(.permanent, "the message expired before it could be sent") }
            fields.append(("ValidityPeriod", String(min(remaining, 36_000))))
        }
        let (timeout, connectTimeout) = try Self.timeouts(settings, context)
        let recordKey = context.connectionID + "\u{1f}" + request.idempotencyKey
        state.withLock {
            $0.sends[recordKey] = SendRecord(to: request.to, from: request.from, startedAt: now, body: request.body, sid: nil)
        }

        let response: HTTPResponse
        do {
            response = try await http.execute(
                .form(
                    .post, url: settings.accountURL + "/Messages.json", fields: fields, timeout: timeout,
                    connectTimeout: connectTimeout, basicAuth: BasicAuth(username: settings.accountSID, password: settings.authToken)))
        } catch {
            throw TwilioAPIError.transport(error, operation: "Send")
        }
        guard (200..<300).contains(response.status) else {
            let error = TwilioAPIError.classify(response, operation: "Send")
            if error.errorClass == .rateLimited { await throttle(context, retryAfter: error.retryAfter ?? .seconds(1)) }
            throw error
        }
        guard let json = try? JSONValue.parse(response.text), let sid = json["sid"]?.stringValue, !sid.isEmpty else {
            // Twilio said it created the message; we just cannot read which one.
            throw CarrierPluginError(
                .transient, "Twilio accepted the message but its answer had no sid", submissionState: .submitted)
        }
        state.withLock { $0.learn(connection: context.connectionID, key: request.idempotencyKey, sid: sid) }
        var result = Carrier_SendResponse()
        result.providerMessageID = sid
        result.carrierStatus = json["status"]?.stringValue ?? ""
        result.segments = UInt32(json["num_segments"]?.stringValue ?? "") ?? 0
        result.price = TwilioPrice.parse(price: json["price"]?.stringValue, unit: json["price_unit"]?.stringValue)
        return result
    }

    /// Adds `ik=KEY` to the StatusCallback so each status callback names the message's key.
    static func callbackURL(_ base: String, idempotencyKey: String) -> String {
        let separator = base.contains("?") ? "&" : "?"
        return base + separator + TwilioWebhook.idempotencyKeyParameter + "=" + FormEncoding.escape(idempotencyKey)
    }

    /// The HTTP timeouts within the request's deadline; CANCELLED when none is left.
    private static func timeouts(_ settings: TwilioConnectionSettings, _ context: RequestContext) throws(CarrierPluginError) -> (
        Duration, Duration
    ) {
        var timeout = settings.requestTimeout
        if let deadline = context.deadline {
            let remaining = deadline - .now
            guard remaining > .milliseconds(20) else { throw CarrierPluginError.cancelled() }
            timeout = min(timeout, remaining)
        }
        if Task.isCancelled { throw CarrierPluginError.cancelled() }
        return (timeout, min(settings.connectTimeout, timeout))
    }

    /// Tells the host to pause this connection for `retryAfter`, at most once a second.
    private func throttle(_ context: RequestContext, retryAfter: Duration) async {
        let now = ContinuousClock.now
        let due = state.withLock { state -> Bool in
            if let last = state.lastThrottle[context.connectionID], now - last < .seconds(1) { return false }
            state.lastThrottle[context.connectionID] = now
            return true
        }
        guard due else { return }
        var throttle = Carrier_Throttle()
        throttle.maxMps = 0
        throttle.duration = Google_Protobuf_Duration(retryAfter)
        throttle.reason = "Twilio answered 429 Too Many Requests"
        await context.events.emit(connectionID: context.connectionID, .throttle(throttle))
    }

    // MARK: QueryStatus

    public func queryStatus(_ request: Carrier_QueryStatusRequest, context: RequestContext) async throws -> Carrier_QueryStatusResponse {
        let settings = try settings(context)
        let record = state.withLock { $0.sends[context.connectionID + "\u{1f}" + request.idempotencyKey] }
        if let sid = record?.sid {
            return try await fetchMessage(sid, settings: settings, context: context)
        }
        let to = request.to.isEmpty ? record?.to ?? "" : request.to
        let from = request.from.isEmpty ? record?.from ?? "" : request.from
        let notBefore = request.notBefore?.seconds ?? record?.startedAt
        guard !to.isEmpty, let notBefore else {
            // Without a recipient and a time window "not found" could not be trusted.
            throw CarrierPluginError(
                .transient,
                "Twilio cannot search by idempotency key: QueryStatus needs to and not_before for a message this process did not send",
                submissionState: .unknown)
        }
        let found = try await searchMessage(
            key: request.idempotencyKey, to: to, from: from, notBefore: notBefore, body: record?.body, settings: settings, context: context)
        if found.found {
            state.withLock { $0.learn(connection: context.connectionID, key: request.idempotencyKey, sid: found.providerMessageID) }
        }
        return found
    }

    private func fetchMessage(_ sid: String, settings: TwilioConnectionSettings, context: RequestContext) async throws
        -> Carrier_QueryStatusResponse
    {
        let json = try await getJSON(
            settings.accountURL + "/Messages/\(FormEncoding.percentEncode(sid)).json", settings: settings, context: context,
            operation: "QueryStatus")
        return Self.queryResponse(json)
    }

    /// Lists the recipient's messages (newest first) back to `notBefore` less a minute of clock
    /// skew, ignoring inbound ones and those known to belong to another idempotency key.
    /// None left: not submitted. When this process made the attempt it knows the body, and
    /// exactly one candidate with that body is the message. Otherwise any candidate makes the
    /// answer ambiguous (TRANSIENT, UNKNOWN): the host must wait for the status callback that
    /// names the key (`?ik=`), because "found" for someone else's message would lose ours.
    private func searchMessage(
        key: String, to: String, from: String, notBefore: Int64, body: String?, settings: TwilioConnectionSettings, context: RequestContext
    ) async throws -> Carrier_QueryStatusResponse {
        let cutoff = notBefore - 60
        let connectionID = context.connectionID
        let owner = { (sid: String) -> String? in self.state.withLock { $0.owners[connectionID + "\u{1f}" + sid] } }
        var fields = [("To", to), ("PageSize", "100")]
        if !from.isEmpty { fields.append(("From", from)) }
        var url: String? = settings.accountURL + "/Messages.json?" + FormEncoding.encode(fields)
        var candidates: [JSONValue] = []
        var pages = 0
        while let next = url {
            pages += 1
            guard pages <= 10 else {
                throw CarrierPluginError(.transient, "QueryStatus: too many recent messages to \(to) to search", submissionState: .unknown)
            }
            let page = try await getJSON(next, settings: settings, context: context, operation: "QueryStatus")
            guard case .array(let messages)? = page["messages"] else { break }
            var reachedCutoff = messages.isEmpty
            for message in messages {
                guard let created = message["date_created"]?.stringValue.flatMap(TwilioDate.parse) else { continue }
                if created < cutoff {
                    reachedCutoff = true
                    continue
                }
                guard message["direction"]?.stringValue?.hasPrefix("outbound") ?? true, let sid = message["sid"]?.stringValue else {
                    continue
                }
                switch owner(sid) {
                case key?: return Self.queryResponse(message)
                case .some: continue
                case nil: candidates.append(message)
                }
            }
            if reachedCutoff { break }
            url = page["next_page_uri"]?.stringValue.map { settings.baseURL + $0 }
        }
        if let body {
            candidates = candidates.filter { $0["body"]?.stringValue == body }
        }
        switch candidates.count {
        case 0: return Carrier_QueryStatusResponse()
        case 1 where body != nil: return Self.queryResponse(candidates[0])
        default:
            throw CarrierPluginError(
                .transient,
                "QueryStatus: \(candidates.count) messages to \(to) since not_before could be this one; wait for its status callback",
                submissionState: .unknown)
        }
    }

    static func queryResponse(_ message: JSONValue) -> Carrier_QueryStatusResponse {
        var response = Carrier_QueryStatusResponse()
        response.found = true
        response.providerMessageID = message["sid"]?.stringValue ?? ""
        response.carrierStatus = message["status"]?.stringValue ?? ""
        response.state = TwilioMessageStatus.deliveryState(response.carrierStatus)
        response.errorCode = message["error_code"]?.stringValue ?? ""
        response.price = TwilioPrice.parse(price: message["price"]?.stringValue, unit: message["price_unit"]?.stringValue)
        return response
    }

    // MARK: Webhooks

    public func parseWebhook(_ request: Carrier_ParseWebhookRequest, context: RequestContext) async throws -> Carrier_ParseWebhookResponse {
        let settings = try settings(context)
        let webhook = TwilioWebhook(request, authToken: settings.authToken)
        var response = Carrier_ParseWebhookResponse()
        response.verified = webhook.verified
        guard webhook.verified else {
            context.log.warning("webhook signature did not verify", metadata: ["connection": context.connectionID])
            response.httpStatus = 403
            response.httpContentType = "text/plain"
            response.httpBody = Array("invalid X-Twilio-Signature\n".utf8)
            return response
        }
        response.httpStatus = 200
        response.httpContentType = "text/xml"
        response.httpBody = TwilioWebhook.emptyTwiML
        guard let kind = webhook.event else { return response }
        if case .deliveryStatus(let status) = kind {
            let sidKey = context.connectionID + "\u{1f}" + status.providerMessageID
            let accepted = state.withLock { state -> Bool in
                if let current = state.statuses[sidKey], !TwilioMessageStatus.supersedes(webhook.status, current) { return false }
                state.statuses[sidKey] = webhook.status
                if !status.idempotencyKey.isEmpty {
                    state.learn(connection: context.connectionID, key: status.idempotencyKey, sid: status.providerMessageID)
                }
                return true
            }
            guard accepted else {
                context.log.debug(
                    "ignoring out-of-order status", metadata: ["sid": status.providerMessageID, "status": webhook.status])
                return response
            }
        }
        var event = Carrier_Event()
        event.connectionID = context.connectionID
        event.kind = kind
        response.events = [event]
        return response
    }

    // MARK: Account and numbers

    public func checkAccount(_ request: Carrier_CheckAccountRequest, context: RequestContext) async throws -> Carrier_CheckAccountResponse {
        let settings = try settings(context)
        let account = try await getJSON(settings.accountURL + ".json", settings: settings, context: context, operation: "CheckAccount")
        var response = Carrier_CheckAccountResponse()
        response.accountName = account["friendly_name"]?.stringValue ?? ""
        response.status = account["status"]?.stringValue ?? ""
        // The balance is a nicety: sub-accounts cannot read it, so a failure is not an error.
        if let balance = try? await getJSON(
            settings.accountURL + "/Balance.json", settings: settings, context: context, operation: "CheckAccount")
        {
            response.balance = balance["balance"]?.stringValue ?? ""
            response.currency = balance["currency"]?.stringValue ?? ""
        }
        return response
    }

    public func searchNumbers(_ request: Carrier_SearchNumbersRequest, context: RequestContext) async throws
        -> Carrier_SearchNumbersResponse
    {
        let settings = try settings(context)
        let country = request.country.isEmpty ? "US" : request.country.uppercased()
        let type: (path: String, kind: Carrier_NumberType) =
            switch request.numberType {
            case .tollFree: ("TollFree", .tollFree)
            case .mobile: ("Mobile", .mobile)
            default: ("Local", .local)
            }
        var fields = [("SmsEnabled", "true"), ("PageSize", String(request.limit == 0 ? 20 : min(request.limit, 1000)))]
        if !request.areaCode.isEmpty { fields.append(("AreaCode", request.areaCode)) }
        if !request.contains.isEmpty { fields.append(("Contains", request.contains)) }
        let url =
            settings.accountURL + "/AvailablePhoneNumbers/\(FormEncoding.percentEncode(country))/\(type.path).json?"
            + FormEncoding.encode(fields)
        let json = try await getJSON(url, settings: settings, context: context, operation: "SearchNumbers")
        var response = Carrier_SearchNumbersResponse()
        guard case .array(let numbers)? = json["available_phone_numbers"] else { return response }
        for entry in numbers {
            var number = Carrier_AvailableNumber()
            number.phoneNumber = entry["phone_number"]?.stringValue ?? ""
            number.region = entry["region"]?.stringValue ?? ""
            number.locality = entry["locality"]?.stringValue ?? ""
            number.numberType = type.kind
            let capabilities = entry["capabilities"]
            number.sms = (capabilities?["SMS"] ?? capabilities?["sms"])?.boolValue ?? false
            number.mms = (capabilities?["MMS"] ?? capabilities?["mms"])?.boolValue ?? false
            if !number.phoneNumber.isEmpty { response.numbers.append(number) }
        }
        return response
    }

    public func purchaseNumber(_ request: Carrier_PurchaseNumberRequest, context: RequestContext) async throws
        -> Carrier_PurchaseNumberResponse
    {
        let settings = try settings(context)
        guard !request.phoneNumber.isEmpty else { throw CarrierPluginError(.permanent, "phone_number is required") }
        var fields = [("PhoneNumber", request.phoneNumber)]
        if !request.smsWebhookURL.isEmpty { fields.append(("SmsUrl", request.smsWebhookURL)) }
        if !request.statusCallbackURL.isEmpty { fields.append(("StatusCallback", request.statusCallbackURL)) }
        let (timeout, connectTimeout) = try Self.timeouts(settings, context)
        let response: HTTPResponse
        do {
            response = try await http.execute(
                .form(
                    .post, url: settings.accountURL + "/IncomingPhoneNumbers.json", fields: fields, timeout: timeout,
                    connectTimeout: connectTimeout, basicAuth: BasicAuth(username: settings.accountSID, password: settings.authToken)))
        } catch {
            throw TwilioAPIError.transport(error, operation: "PurchaseNumber")
        }
        guard (200..<300).contains(response.status) else { throw TwilioAPIError.classify(response, operation: "PurchaseNumber") }
        let json = (try? JSONValue.parse(response.text)) ?? .null
        var result = Carrier_PurchaseNumberResponse()
        result.providerNumberID = json["sid"]?.stringValue ?? ""
        result.phoneNumber = json["phone_number"]?.stringValue ?? request.phoneNumber
        return result
    }

    public func releaseNumber(_ request: Carrier_ReleaseNumberRequest, context: RequestContext) async throws
        -> Carrier_ReleaseNumberResponse
    {
        let settings = try settings(context)
        var sid = request.providerNumberID
        if sid.isEmpty {
            guard !request.phoneNumber.isEmpty else {
                throw CarrierPluginError(.permanent, "provider_number_id or phone_number is required")
            }
            let url = settings.accountURL + "/IncomingPhoneNumbers.json?" + FormEncoding.encode([("PhoneNumber", request.phoneNumber)])
            let list = try await getJSON(url, settings: settings, context: context, operation: "ReleaseNumber")
            guard case .array(let numbers)? = list["incoming_phone_numbers"], let found = numbers.first?["sid"]?.stringValue else {
                return Carrier_ReleaseNumberResponse()  // not ours (any more): already released
            }
            sid = found
        }
        let (timeout, connectTimeout) = try Self.timeouts(settings, context)
        let response: HTTPResponse
        do {
            response = try await http.execute(
                HTTPRequest(
                    method: .delete, url: settings.accountURL + "/IncomingPhoneNumbers/\(FormEncoding.percentEncode(sid)).json",
                    timeout: timeout, connectTimeout: connectTimeout,
                    basicAuth: BasicAuth(username: settings.accountSID, password: settings.authToken)))
        } catch {
            throw TwilioAPIError.transport(error, operation: "ReleaseNumber")
        }
        // 404: already released — releasing is idempotent.
        guard (200..<300).contains(response.status) || response.status == 404 else {
            throw TwilioAPIError.classify(response, operation: "ReleaseNumber")
        }
        return Carrier_ReleaseNumberResponse()
    }

    // MARK: HTTP

    private func getJSON(_ url: String, settings: TwilioConnectionSettings, context: RequestContext, operation: String) async throws
        -> JSONValue
    {
        let (timeout, connectTimeout) = try Self.timeouts(settings, context)
        let response: HTTPResponse
        do {
            response = try await http.execute(
                HTTPRequest(
                    method: .get, url: url, headers: [("Accept", "application/json")], timeout: timeout, connectTimeout: connectTimeout,
                    basicAuth: BasicAuth(username: settings.accountSID, password: settings.authToken)))
        } catch {
            var failure = TwilioAPIError.transport(error, operation: operation)
            failure.submissionState = .notSubmitted  // reads change nothing
            throw failure
        }
        guard (200..<300).contains(response.status) else {
            var failure = TwilioAPIError.classify(response, operation: operation)
            failure.submissionState = .notSubmitted
            throw failure
        }
        do {
            return try JSONValue.parse(response.text)
        } catch {
            throw CarrierPluginError(.transient, "\(operation): Twilio answered with invalid JSON")
        }
    }
}

extension JSONValue {
    /// Strings as they are; numbers in their source text; nil for null and anything else.
    var stringValue: String? {
        switch self {
        case .string(let text): text
        case .number(let text): text
        default: nil
        }
    }

    var boolValue: Bool? {
        switch self {
        case .bool(let value): value
        case .string(let text): text == "true"
        default: nil
        }
    }
}
