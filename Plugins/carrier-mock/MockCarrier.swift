import CarrierKit
import Synchronization
import TowerProto

/// The mock carrier: deterministic from a seed, with configurable latency, delivery and failure
/// rates, per-sender error codes, its own rate limit, simulated replies (interest, STOP, HELP,
/// Spanish ALTO) and a ledger of everything it "sent". See MockSettings for the knobs.
final class MockCarrier: CarrierPlugin {
    let name = "mock"
    let version = "1.0.0"
    let capabilities: [Carrier_Capability] = [
        .sendSms, .sendMms, .statusEvents, .inboundEvents, .queryStatus, .numberSearch, .numberPurchase,
        .numberRelease, .accountCheck, .idempotentSend, .priceQuery,
    ]
    // Events are redelivered quickly so tests of at-least-once delivery stay short.
    let eventRedeliveryInterval: Duration = .seconds(1)
    let maxInFlight = 256
    let suggestedMPS = 50.0

    /// Replies a simulated lead may send, in the order the seed picks from.
    static let replies = [
        "Yes, I'm interested. What's your offer?", "STOP", "HELP", "ALTO", "Who is this?", "Maybe, call me",
    ]

    private struct Connection {
        var settings: MockSettings
        var ledger: MockLedger
        var bucket: TokenBucket?
        var lastThrottle: ContinuousClock.Instant?
    }

    private struct State {
        var connections: [String: Connection] = [:]
        var ledgers: [String: MockLedger] = [:]
        var states: [String: (Carrier_DeliveryState, String)] = [:]  // provider id -> (state, error code)
        var prices: [String: Carrier_Price] = [:]  // provider id -> price, once final
        var events: EventEmitter?
    }

    private let state = Mutex(State())

    func start(events: EventEmitter) async {
        state.withLock { $0.events = events }
    }

    func configure(_ request: Carrier_ConfigureRequest, context: RequestContext) async throws -> Carrier_ConfigureResponse {
        if request.credentials["api_key"] == "invalid" { throw CarrierPluginError.auth("api_key was refused") }
        var warnings: [String] = []
        let merged = request.credentials.merging(request.settings) { _, setting in setting }
        let settings = MockSettings(merged, warnings: &warnings)
        if settings.noisy { print("mock: configure \(context.connectionID) (this print must not corrupt the protocol)") }
        try state.withLock { state throws(MockError) in
            let ledger: MockLedger
            if !settings.ledgerPath.isEmpty, let shared = state.ledgers[settings.ledgerPath] {
                ledger = shared
            } else {
                ledger = try MockLedger(path: settings.ledgerPath)
                if !settings.ledgerPath.isEmpty { state.ledgers[settings.ledgerPath] = ledger }
            }
            let bucket = settings.rateLimitMPS > 0 ? TokenBucket(rate: settings.rateLimitMPS, burst: max(1, settings.rateLimitMPS)) : nil
            state.connections[context.connectionID] = Connection(settings: settings, ledger: ledger, bucket: bucket)
        }
        context.log.info("configured", metadata: ["connection": context.connectionID, "seed": "\(settings.seed)"])
        var response = Carrier_ConfigureResponse()
        response.warnings = warnings
        return response
    }

    func removeConnection(context: RequestContext) async throws -> Carrier_RemoveConnectionResponse {
        state.withLock { _ = $0.connections.removeValue(forKey: context.connectionID) }
        return Carrier_RemoveConnectionResponse()
    }

    private func connection(_ id: String) throws -> Connection {
        guard let connection = state.withLock({ $0.connections[id] }) else {
            throw CarrierPluginError.auth("connection \(id) is not configured")
        }
        return connection
    }

    static func providerID(seed: UInt64, key: String) -> String {
        "MK" + StableHash.hex(StableHash.fnv1a("\(seed)\u{1f}\(key)"))
    }

    func send(_ request: Carrier_SendRequest, context: RequestContext) async throws -> Carrier_SendResponse {
        let connection = try connection(context.connectionID)
        let settings = connection.settings
        if settings.noisy { print("mock: sending \(request.idempotencyKey)") }
        guard !request.idempotencyKey.isEmpty else {
            throw CarrierPluginError(.permanent, "idempotency_key is required")
        }
        if settings.idempotent, let existing = connection.ledger.record(forKey: request.idempotencyKey) {
            return sendResponse(existing.providerID, duplicate: true)
        }
        if let retryAfter = takeRateToken(context.connectionID) {
            await throttleIfDue(context, connection: settings, retryAfter: retryAfter)
            throw CarrierPluginError.rateLimited(retryAfter: retryAfter, carrierCode: "20429")
        }
        if settings.unsubscribedRecipients.contains(request.to) {
            throw CarrierPluginError(.permanent, "Attempt to send to unsubscribed recipient", carrierCode: "21610")
        }
        var random = SeededRandom(seed: settings.seed, request.idempotencyKey, "send")
        if random.unit() < settings.failureRate {
            throw CarrierPluginError(.permanent, "the 'To' number is not a valid phone number", carrierCode: "21211")
        }
        if settings.latency > .zero {
            do { try await Task.sleep(for: settings.latency) } catch { throw CarrierPluginError.cancelled() }
        }
        if Task.isCancelled { throw CarrierPluginError.cancelled() }
        let providerID = Self.providerID(seed: settings.seed, key: request.idempotencyKey)
        let (record, isNew) = try connection.ledger.accept(
            key: request.idempotencyKey, from: request.from, to: request.to, providerID: providerID,
            deduplicate: settings.idempotent)
        if isNew {
            state.withLock { $0.states[record.providerID] = (.queued, "") }
            if settings.statusEvents {
                scheduleOutcome(request, providerID: record.providerID, connectionID: context.connectionID, settings: settings)
            }
        }
        var response = sendResponse(record.providerID, duplicate: !isNew, body: request.body)
        if settings.priceOnSend, let price = Self.price(request.body, settings: settings) { response.price = price }
        return response
    }

    /// Segments as the mock bills them: 153 characters each (GSM-7 when split), at least one.
    static func segments(_ body: String) -> Int { max(1, (body.count + 152) / 153) }

    /// What the mock charges for `body`, when its settings give a price.
    static func price(_ body: String, settings: MockSettings) -> Carrier_Price? {
        settings.pricePerSegmentMicros.map { perSegment in
            var price = Carrier_Price()
            price.amountMicros = perSegment * Int64(segments(body))
            price.currency = settings.priceCurrency
            return price
        }
    }

    private func sendResponse(_ providerID: String, duplicate: Bool, body: String = "") -> Carrier_SendResponse {
        var response = Carrier_SendResponse()
        response.providerMessageID = providerID
        response.carrierStatus = "queued"
        response.segments = UInt32(Self.segments(body))
        response.duplicate = duplicate
        return response
    }

    private func takeRateToken(_ connectionID: String) -> Duration? {
        state.withLock { state in
            guard var bucket = state.connections[connectionID]?.bucket else { return nil }
            let wait = bucket.take()
            state.connections[connectionID]?.bucket = bucket
            return wait
        }
    }

    /// Tells the host to slow down, at most once a second per connection.
    private func throttleIfDue(_ context: RequestContext, connection settings: MockSettings, retryAfter: Duration) async {
        let now = ContinuousClock.now
        let due = state.withLock { state -> Bool in
            if let last = state.connections[context.connectionID]?.lastThrottle, now - last < .seconds(1) { return false }
            state.connections[context.connectionID]?.lastThrottle = now
            return true
        }
        guard due else { return }
        var throttle = Carrier_Throttle()
        throttle.maxMps = settings.rateLimitMPS
        throttle.duration = Google_Protobuf_Duration(.seconds(1))
        throttle.reason = "mock rate limit of \(settings.rateLimitMPS) messages per second"
        await context.events.emit(connectionID: context.connectionID, .throttle(throttle))
    }

    /// Decides (from the seed) how the message ends and whether the lead replies, and emits
    /// those events after the delivery delay.
    private func scheduleOutcome(_ request: Carrier_SendRequest, providerID: String, connectionID: String, settings: MockSettings) {
        guard let events = state.withLock({ $0.events }) else { return }
        var random = SeededRandom(seed: settings.seed, request.idempotencyKey, "outcome")
        var status = Carrier_DeliveryStatus()
        status.providerMessageID = providerID
        status.idempotencyKey = request.idempotencyKey
        status.from = request.from
        status.to = request.to
        if let code = settings.errorCodeForSender[request.from] {
            status.state = .undelivered
            status.errorCode = code
        } else if random.unit() < settings.deliveryRate {
            status.state = .delivered
        } else {
            status.state = .undelivered
            status.errorCode = ["30003", "30005", "30006"][Int(random.next() % 3)]
        }
        status.carrierStatus = status.state == .delivered ? "delivered" : "undelivered"
        if !status.errorCode.isEmpty { status.errorMessage = "mock carrier error \(status.errorCode)" }
        status.carrierEventID = "\(providerID):\(status.carrierStatus)"
        let pricedOnceFinal = Self.price(request.body, settings: settings)
        if settings.priceInStatusEvents { status.price = pricedOnceFinal }
        let reply: Carrier_InboundMessage? = {
            guard status.state == .delivered, random.unit() < settings.replyRate else { return nil }
            var inbound = Carrier_InboundMessage()
            inbound.providerMessageID = "MR" + providerID.dropFirst(2)
            inbound.carrierEventID = inbound.providerMessageID
            inbound.from = request.to
            inbound.to = request.from
            inbound.body = Self.replies[Int(random.next() % UInt64(Self.replies.count))]
            return inbound
        }()
        let delay = settings.deliveryDelay
        Task {
            try? await Task.sleep(for: delay)
            status.occurTime = Self.now()
            self.state.withLock {
                $0.states[providerID] = (status.state, status.errorCode)
                $0.prices[providerID] = pricedOnceFinal
            }
            await events.emit(connectionID: connectionID, .deliveryStatus(status))
            if var reply {
                try? await Task.sleep(for: delay)
                reply.receiveTime = Self.now()
                await events.emit(connectionID: connectionID, .inboundMessage(reply))
            }
        }
    }

    private static func now() -> Google_Protobuf_Timestamp {
        var timestamp = Google_Protobuf_Timestamp()
        let wall = WallClock.now()
        timestamp.seconds = wall.seconds
        timestamp.nanos = wall.nanos
        return timestamp
    }

    func queryStatus(_ request: Carrier_QueryStatusRequest, context: RequestContext) async throws -> Carrier_QueryStatusResponse {
        let connection = try connection(context.connectionID)
        var response = Carrier_QueryStatusResponse()
        guard let record = connection.ledger.record(forKey: request.idempotencyKey) else { return response }
        response.found = true
        response.providerMessageID = record.providerID
        let (state, code) = state.withLock { $0.states[record.providerID] } ?? (.sent, "")
        response.price = self.state.withLock { $0.prices[record.providerID] }
        response.state = state
        response.errorCode = code
        response.carrierStatus = state.protoName.map { String($0.dropFirst("DELIVERY_STATE_".count)).lowercased() } ?? ""
        return response
    }

    func checkAccount(_ request: Carrier_CheckAccountRequest, context: RequestContext) async throws -> Carrier_CheckAccountResponse {
        _ = try connection(context.connectionID)
        var response = Carrier_CheckAccountResponse()
        response.accountName = "Mock account \(context.connectionID)"
        response.status = "active"
        response.balance = "100.00"
        response.currency = "USD"
        return response
    }

    func searchNumbers(_ request: Carrier_SearchNumbersRequest, context: RequestContext) async throws -> Carrier_SearchNumbersResponse {
        let connection = try connection(context.connectionID)
        let areaCode = request.areaCode.isEmpty ? "555" : request.areaCode
        var random = SeededRandom(seed: connection.settings.seed, "numbers", areaCode)
        var response = Carrier_SearchNumbersResponse()
        for _ in 0..<(request.limit == 0 ? 5 : min(Int(request.limit), 50)) {
            var number = Carrier_AvailableNumber()
            let line = String(random.next() % 10_000_000)
            number.phoneNumber = "+1" + areaCode + String(repeating: "0", count: 7 - line.count) + line
            number.numberType = request.numberType == .unspecified ? .local : request.numberType
            number.region = "TX"
            number.sms = true
            number.mms = true
            response.numbers.append(number)
        }
        return response
    }

    func purchaseNumber(_ request: Carrier_PurchaseNumberRequest, context: RequestContext) async throws -> Carrier_PurchaseNumberResponse {
        _ = try connection(context.connectionID)
        var response = Carrier_PurchaseNumberResponse()
        response.phoneNumber = request.phoneNumber
        response.providerNumberID = "PN" + StableHash.hex(StableHash.fnv1a(request.phoneNumber))
        return response
    }

    func releaseNumber(_ request: Carrier_ReleaseNumberRequest, context: RequestContext) async throws -> Carrier_ReleaseNumberResponse {
        _ = try connection(context.connectionID)
        return Carrier_ReleaseNumberResponse()
    }
}
