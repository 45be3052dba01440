import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import TowerHTTPClient
import TowerProtoRuntime

@testable import TwilioCarrier

/// A local fake of Twilio's REST API (2010-04-01) on 127.0.0.1: checks Basic auth and form
/// fields like Twilio does, answers with Twilio-shaped JSON and error bodies, and can be told to
/// rate-limit, fail, hang or drop the connection.
final class FakeTwilio: Sendable {
    /// What to do with the next matching request instead of answering normally.
    enum Fault: Sendable {
        /// Answer with this status and Twilio error code.
        case error(status: Int, code: Int, message: String, retryAfter: String? = nil)
        /// Process the request (create the message), then never answer.
        case hangAfterProcessing
        /// Read the request and never answer (nothing created).
        case hang
        /// Process the request, then close the connection without an answer.
        case dropAfterProcessing
    }

    struct Message: Sendable {
        var sid: String
        var to: String
        var from: String
        var body: String
        var status: String
        var statusCallback: String
        var messagingServiceSID: String
        var created: Int64
        var mediaURLs: [String]
        /// Twilio's price string ("-0.00790"); nil until Twilio has priced the message.
        var price: String? = nil
    }

    struct RecordedRequest: Sendable {
        var method: String
        var path: String
        var query: [(String, String)]
        var form: [(String, String)]
        var authorized: Bool
    }

    private struct State {
        var messages: [Message] = []
        var numbers: [String: String] = [:]  // sid -> phone number
        var faults: [Fault] = []
        var requests: [RecordedRequest] = []
        var nextSID = 1
    }

    let accountSID: String
    let authToken: String
    private let state = Mutex(State())
    private let channel: Channel
    let port: Int

    var baseURL: String { "http://127.0.0.1:\(port)" }

    static let testAccountSID = "AC" + String(repeating: "a1", count: 16)

    init(accountSID: String = FakeTwilio.testAccountSID, authToken: String = "test-auth-token") async throws {
        self.accountSID = accountSID
        self.authToken = authToken
        let box = Box()
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(FakeTwilioHandler(fake: box))
                }
            }
        channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
        box.fake.withLock { $0 = self }
    }

    func close() async {
        try? await channel.close()
    }

    /// Queues a fault for the next request that changes something (POST/DELETE) or, with
    /// `anyMethod`, the next request at all.
    func failNext(_ fault: Fault) { state.withLock { $0.faults.append(fault) } }

    var messages: [Message] { state.withLock { $0.messages } }
    var requests: [RecordedRequest] { state.withLock { $0.requests } }
    var numbers: [String: String] { state.withLock { $0.numbers } }

    /// Prices a message the way Twilio does once it is done (a negative decimal string).
    func setPrice(_ sid: String, _ price: String) {
        state.withLock { state in
            if let index = state.messages.firstIndex(where: { $0.sid == sid }) { state.messages[index].price = price }
        }
    }

    func setStatus(_ sid: String, _ status: String) {
        state.withLock { state in
            if let index = state.messages.firstIndex(where: { $0.sid == sid }) { state.messages[index].status = status }
        }
    }

    /// Adds a message as if sent earlier (for QueryStatus searches).
    func addMessage(to: String, from: String, created: Int64, status: String = "delivered") -> String {
        state.withLock { state in
            let sid = Self.sid("SM", state.nextSID)
            state.nextSID += 1
            state.messages.append(
                Message(
                    sid: sid, to: to, from: from, body: "earlier", status: status, statusCallback: "", messagingServiceSID: "",
                    created: created, mediaURLs: []))
            return sid
        }
    }

    static func sid(_ prefix: String, _ n: Int) -> String {
        let hex = String(n, radix: 16)
        return prefix + String(repeating: "0", count: 32 - hex.count) + hex
    }

    // MARK: Request handling

    enum Outcome: Sendable {
        case respond(status: Int, headers: [(String, String)], body: String)
        case hang
        case drop
        indirect case delayed(Duration, Outcome)
    }

    func handle(method: String, uri: String, authorization: String?, body: [UInt8]) -> Outcome {
        let (path, queryText) = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).map(String.init).splitPair
        let query = FormEncoding.decode(queryText)
        let form = FormEncoding.decode(String(decoding: body, as: UTF8.self))
        let expected = "Basic " + Base64.encode(Array("\(accountSID):\(authToken)".utf8))
        let authorized = authorization == expected
        state.withLock { $0.requests.append(RecordedRequest(method: method, path: path, query: query, form: form, authorized: authorized)) }

        guard authorized else {
            return error(401, 20003, "Authentication Error - invalid username")
        }
        let prefix = "/2010-04-01/Accounts/\(accountSID)"
        guard path.hasPrefix(prefix) else { return error(404, 20404, "The requested resource \(path) was not found") }
        let resource = String(path.dropFirst(prefix.count))
        let mutates = method == "POST" || method == "DELETE"
        let fault: Fault? = mutates ? state.withLock { $0.faults.isEmpty ? nil : $0.faults.removeFirst() } : nil
        if case .hang? = fault { return .hang }
        if case .error(let status, let code, let message, let retryAfter)? = fault {
            var outcome = error(status, code, message)
            if let retryAfter, case .respond(let s, var headers, let b) = outcome {
                headers.append(("Retry-After", retryAfter))
                outcome = .respond(status: s, headers: headers, body: b)
            }
            return outcome
        }
        let outcome = route(method: method, resource: resource, query: query, form: form)
        switch fault {
        case .hangAfterProcessing?: return .hang
        case .dropAfterProcessing?: return .drop
        default: return outcome
        }
    }

    private func route(method: String, resource: String, query: [(String, String)], form: [(String, String)]) -> Outcome {
        func field(_ fields: [(String, String)], _ name: String) -> String? { fields.last { $0.0 == name }?.1 }
        switch (method, resource) {
        case ("POST", "/Messages.json"):
            guard let to = field(form, "To"), !to.isEmpty else { return error(400, 21604, "A 'To' phone number is required.") }
            let from = field(form, "From") ?? ""
            let service = field(form, "MessagingServiceSid") ?? ""
            guard !from.isEmpty || !service.isEmpty else { return error(400, 21603, "A 'From' phone number is required.") }
            let body = field(form, "Body") ?? ""
            let media = form.filter { $0.0 == "MediaUrl" }.map(\.1)
            guard !body.isEmpty || !media.isEmpty else { return error(400, 21602, "Message body is required.") }
            guard to.hasPrefix("+"), to.dropFirst().allSatisfy(\.isNumber), to.count >= 8 else {
                return error(400, 21211, "The 'To' number \(to) is not a valid phone number.")
            }
            // Twilio's magic test numbers, reused here.
            if to == "+15005550009" { return error(400, 21614, "'To' number is not a valid mobile number") }
            if to == "+15005550004" { return error(400, 21610, "Attempt to send to unsubscribed recipient") }
            if to == "+15005550429" {
                guard case .respond(let status, var headers, let body) = error(429, 20429, "Too Many Requests") else { return .hang }
                headers.append(("Retry-After", "1"))
                return .respond(status: status, headers: headers, body: body)
            }
            let message = state.withLock { state in
                let sid = Self.sid("SM", state.nextSID)
                state.nextSID += 1
                let message = Message(
                    sid: sid, to: to, from: from, body: body, status: service.isEmpty ? "queued" : "accepted",
                    statusCallback: field(form, "StatusCallback") ?? "", messagingServiceSID: service, created: WallClock.now().seconds,
                    mediaURLs: media)
                state.messages.append(message)
                return message
            }
            let created = Outcome.respond(status: 201, headers: json, body: messageJSON(message).serialized())
            // A slow Twilio: the message exists at once, the answer comes 3 s later.
            return to == "+15005550998" ? .delayed(.seconds(3), created) : created
        case ("GET", "/Messages.json"):
            let to = field(query, "To")
            let from = field(query, "From")
            let pageSize = Int(field(query, "PageSize") ?? "50") ?? 50
            let page = Int(field(query, "Page") ?? "0") ?? 0
            let all = state.withLock { $0.messages }
                .filter { (to == nil || $0.to == to) && (from == nil || $0.from == from) }
                .sorted { $0.created > $1.created }
            let slice = Array(all.dropFirst(page * pageSize).prefix(pageSize))
            let hasMore = all.count > (page + 1) * pageSize
            var nextQuery = query.filter { $0.0 != "Page" }
            nextQuery.append(("Page", String(page + 1)))
            let next: JSONValue =
                hasMore ? .string("/2010-04-01/Accounts/\(accountSID)/Messages.json?" + FormEncoding.encode(nextQuery)) : .null
            let body = JSONValue.object([
                ("messages", .array(slice.map(messageJSON))), ("page", .number(String(page))), ("page_size", .number(String(pageSize))),
                ("next_page_uri", next), ("uri", .string("/2010-04-01/Accounts/\(accountSID)/Messages.json")),
            ])
            return .respond(status: 200, headers: json, body: body.serialized())
        case ("GET", _) where resource.hasPrefix("/Messages/") && resource.hasSuffix(".json"):
            let sid = String(resource.dropFirst("/Messages/".count).dropLast(".json".count))
            guard let message = state.withLock({ $0.messages.first { $0.sid == sid } }) else {
                return error(404, 20404, "The requested resource was not found")
            }
            return .respond(status: 200, headers: json, body: messageJSON(message).serialized())
        case ("GET", ".json"):
            let body = JSONValue.object([
                ("sid", .string(accountSID)), ("friendly_name", .string("Fake Land Co")), ("status", .string("active")),
                ("type", .string("Full")), ("date_created", .string(TwilioDate.format(1_600_000_000))),
            ])
            return .respond(status: 200, headers: json, body: body.serialized())
        case ("GET", "/Balance.json"):
            let body = JSONValue.object([("account_sid", .string(accountSID)), ("balance", .string("42.17")), ("currency", .string("USD"))])
            return .respond(status: 200, headers: json, body: body.serialized())
        case ("GET", "/AvailablePhoneNumbers/US/Local.json"), ("GET", "/AvailablePhoneNumbers/US/TollFree.json"):
            let areaCode = field(query, "AreaCode") ?? "512"
            let size = min(Int(field(query, "PageSize") ?? "20") ?? 20, 30)
            let numbers: [JSONValue] = (0..<size).map { i in
                .object([
                    ("friendly_name", .string("(\(areaCode)) 555-01\(i < 10 ? "0" : "")\(i)")),
                    ("phone_number", .string("+1\(areaCode)55501\(i < 10 ? "0" : "")\(i)")), ("locality", .string("Austin")),
                    ("region", .string("TX")), ("iso_country", .string("US")),
                    ("capabilities", .object([("voice", .bool(true)), ("SMS", .bool(true)), ("MMS", .bool(i % 2 == 0))])),
                    ("beta", .bool(false)),
                ])
            }
            let body = JSONValue.object([("available_phone_numbers", .array(numbers)), ("uri", .string(resource))])
            return .respond(status: 200, headers: json, body: body.serialized())
        case ("POST", "/IncomingPhoneNumbers.json"):
            guard let number = field(form, "PhoneNumber"), !number.isEmpty else {
                return error(400, 21421, "PhoneNumber is invalid.")
            }
            if number.hasSuffix("0000") { return error(400, 21422, "PhoneNumber is not available.") }
            let sid = state.withLock { state in
                let sid = Self.sid("PN", state.nextSID)
                state.nextSID += 1
                state.numbers[sid] = number
                return sid
            }
            let body = JSONValue.object([
                ("sid", .string(sid)), ("phone_number", .string(number)), ("sms_url", .string(field(form, "SmsUrl") ?? "")),
                ("capabilities", .object([("sms", .bool(true)), ("mms", .bool(true))])),
            ])
            return .respond(status: 201, headers: json, body: body.serialized())
        case ("GET", "/IncomingPhoneNumbers.json"):
            let wanted = field(query, "PhoneNumber")
            let numbers = state.withLock { $0.numbers }.filter { wanted == nil || $0.value == wanted }
                .map { JSONValue.object([("sid", .string($0.key)), ("phone_number", .string($0.value))]) }
            return .respond(status: 200, headers: json, body: JSONValue.object([("incoming_phone_numbers", .array(numbers))]).serialized())
        case ("DELETE", _) where resource.hasPrefix("/IncomingPhoneNumbers/"):
            let sid = String(resource.dropFirst("/IncomingPhoneNumbers/".count).dropLast(".json".count))
            let removed = state.withLock { $0.numbers.removeValue(forKey: sid) }
            return removed == nil ? error(404, 20404, "The requested resource was not found") : .respond(status: 204, headers: [], body: "")
        default:
            return error(404, 20404, "The requested resource \(resource) was not found")
        }
    }

    private var json: [(String, String)] { [("Content-Type", "application/json; charset=utf-8")] }

    private func error(_ status: Int, _ code: Int, _ message: String) -> Outcome {
        let body = JSONValue.object([
            ("code", .number(String(code))), ("message", .string(message)),
            ("more_info", .string("https://www.twilio.com/docs/errors/\(code)")), ("status", .number(String(status))),
        ])
        return .respond(status: status, headers: json, body: body.serialized())
    }

    private func messageJSON(_ message: Message) -> JSONValue {
        .object([
            ("account_sid", .string(accountSID)), ("api_version", .string("2010-04-01")), ("body", .string(message.body)),
            ("date_created", .string(TwilioDate.format(message.created))), ("date_sent", .null),
            ("date_updated", .string(TwilioDate.format(message.created))), ("direction", .string("outbound-api")),
            ("error_code", .null), ("error_message", .null), ("from", message.from.isEmpty ? .null : .string(message.from)),
            ("messaging_service_sid", message.messagingServiceSID.isEmpty ? .null : .string(message.messagingServiceSID)),
            ("num_media", .string(String(message.mediaURLs.count))), ("num_segments", .string("1")),
            ("price", message.price.map(JSONValue.string) ?? .null),
            ("price_unit", .string("USD")), ("sid", .string(message.sid)), ("status", .string(message.status)),
            ("to", .string(message.to)), ("uri", .string("/2010-04-01/Accounts/\(accountSID)/Messages/\(message.sid).json")),
        ])
    }

    final class Box: Sendable {
        let fake = Mutex<FakeTwilio?>(nil)
    }
}

extension Array where Element == String {
    fileprivate var splitPair: (String, String) { (self[0], count > 1 ? self[1] : "") }
}

/// One HTTP/1.1 connection to the fake.
private final class FakeTwilioHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let fake: FakeTwilio.Box
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(fake: FakeTwilio.Box) { self.fake = fake }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(var buffer):
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head, let fake = fake.fake.withLock({ $0 }) else { return }
            let outcome = fake.handle(
                method: head.method.rawValue, uri: head.uri, authorization: head.headers.first(name: "Authorization"), body: body)
            perform(outcome, head: head, context: context)
        }
    }

    private func perform(_ outcome: FakeTwilio.Outcome, head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch outcome {
        case .delayed(let delay, let later):
            let (seconds, attoseconds) = delay.components
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)) {
                let (handler, context) = loopBound.value
                handler.perform(later, head: head, context: context)
            }
        case .hang:
            break
        case .drop:
            context.close(promise: nil)
        case .respond(let status, let headers, let text):
            var responseHead = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status))
            for (name, value) in headers { responseHead.headers.add(name: name, value: value) }
            responseHead.headers.add(name: "Content-Length", value: String(text.utf8.count))
            context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
            if !text.isEmpty {
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
