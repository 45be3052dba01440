import Foundation
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

/// MessageService: threads, the inbox, the live inbound feed and manual replies. Inbound
/// messages are written by the carrier paths (InboundProcessor); this service reads them and
/// queues what people write.
public struct MessageServiceImpl: MessageService.ServiceProtocol {
    let tenancy: Tenancy
    let feed: InboundFeed

    public init(store: Store, feed: InboundFeed) {
        tenancy = Tenancy(store: store)
        self.feed = feed
    }

    public func getMessage(request: GetMessageRequest, context: ServerContext) async throws -> Message {
        let id = try IdentityRecords.id(request.messageID, field: "message_id")
        return try await tenancy.transaction(context, readOnly: true) { tx, _ in
            guard let message = try await MessageRecords.find(tx, id: id) else { throw DomainError.notFound("message", request.messageID) }
            return message
        }
    }

    static func before(_ cursor: PageCursor?) throws -> SQL {
        guard let cursor else { return "" }
        let (micros, id) = try cursor.timeKey()
        return "AND (m.created_at, m.id) < (timestamptz 'epoch' + \(micros) * interval '1 microsecond', \(id))"
    }

    static func nextCursor(_ message: Message?) -> PageCursor? {
        guard let message, let time = message.createTime else { return nil }
        return PageCursor(sortKey: String(time.seconds * 1_000_000 + Int64(time.nanos / 1000)), id: message.id)
    }

    public func listThread(request: ListThreadRequest, context: ServerContext) async throws -> ListThreadResponse {
        let lead = try IdentityRecords.id(request.leadID, field: "lead_id")
        let size = try PageCursor.size(request.page)
        let after = try Self.before(try PageCursor.decode(request.page))
        return try await tenancy.transaction(context, readOnly: true) { tx, _ in
            guard try await tx.query("SELECT 1 FROM leads WHERE id = \(lead)").firstRow != nil else {
                throw DomainError.notFound("lead", request.leadID)
            }
            let rows = try await tx.query(
                """
                SELECT \(unsafeRaw: MessageRecords.columns) FROM messages m
                WHERE m.lead_id = \(lead) \(after)
                ORDER BY m.created_at DESC, m.id DESC LIMIT \(PageCursor.fetchLimit(size))
                """)
            var response = ListThreadResponse()
            let page = KeysetPage(rows, size: size)
            response.messages = try page.rows.map(MessageRecords.message)
            response.page = page.info(last: response.messages.last) { Self.nextCursor($0) }
            return response
        }
    }

    public func listInbox(request: ListInboxRequest, context: ServerContext) async throws -> ListInboxResponse {
        let size = try PageCursor.size(request.page)
        let after = try Self.before(try PageCursor.decode(request.page))
        let reviewOnly: SQL =
            request.needsReviewOnly
            ? "AND EXISTS (SELECT 1 FROM inbound_reviews r WHERE r.lead_id = m.lead_id AND r.status = 'open')" : ""
        let unreadOnly: SQL =
            request.unreadOnly
            ? "AND EXISTS (SELECT 1 FROM messages u WHERE u.lead_id = m.lead_id AND u.direction = 'inbound' AND u.read_at IS NULL)" : ""
        return try await tenancy.transaction(context, readOnly: true) { tx, _ in
            // The latest inbound message per lead: no later inbound message of the same lead.
            let rows = try await tx.query(
                """
                SELECT \(unsafeRaw: MessageRecords.columns), l.source,
                       coalesce(nullif(trim(concat_ws(' ', l.first_name, l.last_name)), ''), nullif(l.owner_name, ''),
                                m.from_phone::text) AS display_name,
                       EXISTS (SELECT 1 FROM inbound_reviews r WHERE r.lead_id = m.lead_id AND r.status = 'open') AS lead_needs_review,
                       EXISTS (SELECT 1 FROM opt_outs o WHERE o.phone = m.from_phone AND o.revoked_at IS NULL) AS opted_out,
                       (SELECT count(*) FROM messages u
                        WHERE u.lead_id = m.lead_id AND u.direction = 'inbound' AND u.read_at IS NULL)::int AS unread
                FROM messages m JOIN leads l ON l.id = m.lead_id
                WHERE m.direction = 'inbound'
                  AND NOT EXISTS (SELECT 1 FROM messages n WHERE n.lead_id = m.lead_id AND n.direction = 'inbound'
                                  AND (n.created_at, n.id) > (m.created_at, m.id))
                  \(reviewOnly) \(unreadOnly) \(after)
                ORDER BY m.created_at DESC, m.id DESC LIMIT \(PageCursor.fetchLimit(size))
                """)
            var response = ListInboxResponse()
            let page = KeysetPage(rows, size: size)
            response.entries = try page.rows.map { row in
                var entry = InboxEntry()
                let message = try MessageRecords.message(row)
                entry.leadID = message.leadID
                entry.displayName = try row.decode("display_name")
                entry.unknownSender = try row.decode("source", as: String?.self) == InboundProcessor.unknownSenderSource
                entry.needsReview = try row.decode("lead_needs_review")
                entry.optedOut = try row.decode("opted_out")
                entry.unreadCount = try row.decode("unread")
                entry.latestInbound = message
                return entry
            }
            response.page = page.info(last: response.entries.last?.latestInbound) { Self.nextCursor($0) }
            return response
        }
    }

    /// Inbound messages of the current org created at or after `micros`, oldest first.
    static func inboundSince(_ tx: Transaction, micros: Int64, limit: Int) async throws -> [Message] {
        try await tx.query(
            """
            SELECT \(unsafeRaw: MessageRecords.columns) FROM messages m
            WHERE m.direction = 'inbound' AND m.created_at >= timestamptz 'epoch' + \(micros) * interval '1 microsecond'
            ORDER BY m.created_at, m.id LIMIT \(limit)
            """
        ).map(MessageRecords.message)
    }

    static let replayLimit = 500

    public func subscribeInbound(
        request: SubscribeInboundRequest, responses: ResponseStreamWriter<Message>, context: ServerContext
    ) async throws {
        let principal = try RequestPrincipal.required()
        let org = principal.orgID.description
        // Registered (and LISTENing) before the replay reads, so a message commits either before
        // the replay (and is in it) or after registration (and is signalled); `delivered`
        // drops the ones that are both.
        let (subscription, signals) = try await feed.subscribe(org: org)
        do {
            try await stream(request, signals: signals, to: responses, context: context)
        } catch {
            await feed.unsubscribe(org: org, id: subscription)
            throw error
        }
        await feed.unsubscribe(org: org, id: subscription)
    }

    private func stream(
        _ request: SubscribeInboundRequest, signals: AsyncStream<InboundFeed.Signal>, to responses: ResponseStreamWriter<Message>,
        context: ServerContext
    ) async throws {
        var delivered = RecentIDs(capacity: 10_000)
        var newestMicros: Int64 = try await tenancy.transaction(context, readOnly: true) { tx, _ in
            try await tx.query("SELECT \(unsafeRaw: Timestamps.micros("now()")) AS now").one().decode("now", as: Int64.self)
        }
        func send(_ messages: [Message]) async throws {
            for message in messages where delivered.insert(message.id) {
                if let time = message.createTime { newestMicros = max(newestMicros, time.seconds * 1_000_000 + Int64(time.nanos / 1000)) }
                try await responses.write(message)
            }
        }
        if let since = request.since {
            let micros = since.seconds * 1_000_000 + Int64(since.nanos / 1000)
            try await send(
                try await tenancy.transaction(context, readOnly: true) { tx, _ in
                    try await Self.inboundSince(tx, micros: micros, limit: Self.replayLimit)
                })
        }
        for await signal in signals {
            switch signal {
            case .message(let id):
                guard !delivered.contains(id), let messageID = UUIDText(id) else { continue }
                let found = try await tenancy.transaction(context, readOnly: true) { tx, _ in
                    try await MessageRecords.find(tx, id: messageID)
                }
                if let found, found.direction == .inbound { try await send([found]) }
            case .reconnected:
                // Notifications sent while LISTEN was down are lost: re-read the recent past.
                let from = newestMicros - 60_000_000
                try await send(
                    try await tenancy.transaction(context, readOnly: true) { tx, _ in
                        try await Self.inboundSince(tx, micros: from, limit: Self.replayLimit)
                    })
            }
        }
    }

    public func sendMessage(request: SendMessageRequest, context: ServerContext) async throws -> Message {
        var violations: [FieldViolationInput] = []
        let lead = UUIDText(request.leadID)
        if lead == nil { violations.append(("lead_id", "must be an id (UUID) as returned by this API")) }
        let leadPhone = request.leadPhoneID.isEmpty ? nil : UUIDText(request.leadPhoneID)
        if !request.leadPhoneID.isEmpty && leadPhone == nil {
            violations.append(
                ("lead_phone_id", "must be an id (UUID) as returned by this API, or empty for the phone the lead last wrote from"))
        }
        let body = request.body
        if body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || body.count > 1600 {
            violations.append(("body", "must be 1 to 1600 characters"))
        } else if MessageEncoding(body).segments > OutboundQueue.maxSegments {
            let encoding = MessageEncoding(body)
            violations.append(
                (
                    "body",
                    "is \(encoding.segments) segments in \(encoding.charset.rawValue) (at most \(OutboundQueue.maxSegments)); shorten it"
                        + (encoding.nonGSMCharacters.isEmpty
                            ? "" : " or replace \(encoding.nonGSMCharacters.map { "\"\($0)\"" }.joined(separator: " ")), which force UCS-2")
                ))
        }
        if request.requestID.count > 200 { violations.append(("request_id", "must be at most 200 characters")) }
        try throwIfInvalid(violations)
        guard let lead else { throw DomainError.invalid("lead_id", "must be an id (UUID) as returned by this API") }

        return try await tenancy.transaction(context) { tx, principal in
            let orgID = UUIDText(principal.orgID.description)!
            let messageID: UUIDText
            if request.requestID.isEmpty {
                messageID = UUIDText(UUID().uuidString.lowercased())!
            } else {
                // The same request id in the same org always names the same message.
                messageID = UUIDText(
                    try await tx.query("SELECT md5('manual|' || \(orgID.text) || '|' || \(request.requestID))::uuid::text AS id").one()
                        .decode("id", as: String.self))!
                if let existing = try await MessageRecords.find(tx, id: messageID) {
                    guard existing.leadID == request.leadID, existing.purpose == .manual else {
                        throw DomainError.invalid("request_id", "was already used for a different message; use a new request_id")
                    }
                    return existing
                }
            }
            guard
                let leadRow = try await tx.query(
                    "SELECT property_state, mailing_state, time_zone FROM leads WHERE id = \(lead)"
                ).firstRow
            else { throw DomainError.notFound("lead", request.leadID) }
            let phone = try await Self.recipientPhone(tx, lead: lead, leadPhone: leadPhone, request: request)
            // Shared phone lock: an opt-out either committed before this check (and is seen) or
            // waits until this message is queued (and cancels it).
            try await tx.execute("SELECT pg_advisory_xact_lock_shared(ctower_phone_lock_key(\(orgID), \(phone.phone)))")
            if let optOut = try await OptOutLedger.active(tx, phone: phone.phone) {
                let day = Timestamps.proto(micros: optOut.micros).map { Self.day($0) } ?? "earlier"
                let how = optOut.keyword.map { "replied \($0)" } ?? "opted out (\(optOut.channel))"
                throw DomainError.failedPrecondition(
                    "lead_phone_id: \(phone.phone) \(how) on \(day) and is opted out of every number of this org; it can be messaged again only after it texts START"
                )
            }
            let number = try await tx.query(
                """
                SELECT m.phone_number_id::text AS id FROM messages m JOIN phone_numbers n ON n.id = m.phone_number_id
                WHERE m.lead_id = \(lead) AND m.direction = 'inbound' AND m.from_phone = \(phone.phone) AND n.state <> 'released'
                ORDER BY m.created_at DESC LIMIT 1
                """
            ).firstRow.flatMap { try $0.decode("id", as: String?.self) }.flatMap(UUIDText.init)
            var outbound = OutboundQueue.Outbound(toPhone: phone.phone, body: body, purpose: "manual")
            outbound.id = messageID
            outbound.leadID = lead
            outbound.leadPhoneID = phone.id
            outbound.phoneNumberID = number
            let states = [try leadRow.decode("property_state", as: String?.self), try leadRow.decode("mailing_state", as: String?.self)]
                .compactMap { $0 }
            outbound.recipientStates = Array(Set(states)).sorted()
            var zones = Set(outbound.recipientStates.flatMap { QuietHours.zones(forState: $0) ?? [] })
            if let zone = try leadRow.decode("time_zone", as: String?.self) { zones.insert(zone) }
            outbound.recipientZones = zones.sorted()
            try await OutboundQueue.enqueue(tx, orgID: orgID, outbound)
            try await Audit.record(
                tx, principal, action: "message.send_manual", targetType: "message", targetID: messageID.text,
                details: .object([
                    ("lead_id", .string(lead.text)), ("to_phone", .string(phone.phone)),
                    ("phone_number_id", number.map { .string($0.text) } ?? .null),
                ]))
            guard let queued = try await MessageRecords.find(tx, id: messageID) else {
                throw DomainError.notFound("message", messageID.text)
            }
            return queued
        }
    }

    public func resolveReview(request: ResolveReviewRequest, context: ServerContext) async throws -> Message {
        let id = try IdentityRecords.id(request.messageID, field: "message_id")
        let status: String
        switch request.resolution {
        case .confirmed: status = "confirmed"
        case .dismissed: status = "dismissed"
        default: throw DomainError.invalid("resolution", "must be REVIEW_RESOLUTION_CONFIRMED or REVIEW_RESOLUTION_DISMISSED")
        }
        return try await tenancy.transaction(context) { tx, principal in
            guard let message = try await MessageRecords.find(tx, id: id) else { throw DomainError.notFound("message", request.messageID) }
            guard
                let review = try await tx.query(
                    """
                    UPDATE inbound_reviews SET status = \(status), resolved_by = ctower_current_user(), resolved_at = now()
                    WHERE message_id = \(id) AND status = 'open'
                    RETURNING id::text AS id, reason, phone::text AS phone
                    """
                ).firstRow
            else {
                throw DomainError.failedPrecondition(
                    "message_id: message \(request.messageID) has no open review (it was not flagged, or was already resolved)")
            }
            let orgID = UUIDText(principal.orgID.description)!
            let phone = try review.decode("phone", as: String.self)
            var optOutID: String?
            if status == "confirmed" {
                let recorded = try await OptOutLedger.record(
                    tx, orgID: orgID, phone: phone, leadID: UUIDText(message.leadID), keyword: nil, channel: "manual",
                    sourceMessageID: id, phoneNumberID: UUIDText(message.phoneNumberID))
                if recorded.isNew {
                    optOutID = recorded.optOutID
                    try await Audit.record(
                        tx, principal, action: "opt_out.record", targetType: "opt_out", targetID: recorded.optOutID,
                        details: .object([
                            ("phone", .string(phone)), ("channel", .string("manual")), ("inbound_message_id", .string(id.text)),
                            ("lead_id", .string(message.leadID)), ("cancelled_messages", .number(String(recorded.cancelledMessages))),
                            ("opted_out_campaign_targets", .number(String(recorded.optedOutTargets))),
                        ]))
                }
            }
            try await Audit.record(
                tx, principal, action: "inbound.resolve_review", targetType: "inbound_review", targetID: try review.decode("id"),
                details: .object([
                    ("resolution", .string(status)), ("reason", .string(try review.decode("reason"))),
                    ("inbound_message_id", .string(id.text)), ("opt_out_id", optOutID.map { .string($0) } ?? .null),
                ]))
            guard let resolved = try await MessageRecords.find(tx, id: id) else { throw DomainError.notFound("message", request.messageID) }
            return resolved
        }
    }

    public func markThreadRead(request: MarkThreadReadRequest, context: ServerContext) async throws -> MarkThreadReadResponse {
        let lead = try IdentityRecords.id(request.leadID, field: "lead_id")
        return try await tenancy.transaction(context) { tx, principal in
            guard try await tx.query("SELECT 1 FROM leads WHERE id = \(lead)").firstRow != nil else {
                throw DomainError.notFound("lead", request.leadID)
            }
            let marked = try await tx.execute(
                "UPDATE messages SET read_at = now() WHERE lead_id = \(lead) AND direction = 'inbound' AND read_at IS NULL")
            if marked > 0 {
                try await Audit.record(
                    tx, principal, action: "message.mark_read", targetType: "lead", targetID: lead.text,
                    details: .object([("messages", .number(String(marked)))]))
            }
            var response = MarkThreadReadResponse()
            response.marked = Int32(clamping: marked)
            return response
        }
    }

    /// The phone a manual message goes to: the one named, else the one the lead last wrote
    /// from, else the lead's first phone.
    static func recipientPhone(_ tx: Transaction, lead: UUIDText, leadPhone: UUIDText?, request: SendMessageRequest) async throws -> (
        id: UUIDText, phone: String
    ) {
        let row: Row?
        if let leadPhone {
            row = try await tx.query(
                "SELECT id::text AS id, phone::text AS phone FROM lead_phones WHERE id = \(leadPhone) AND lead_id = \(lead)"
            )
            .firstRow
            guard row != nil else { throw DomainError.notFound("lead phone", request.leadPhoneID) }
        } else {
            row = try await tx.query(
                """
                SELECT lp.id::text AS id, lp.phone::text AS phone FROM lead_phones lp
                WHERE lp.lead_id = \(lead)
                ORDER BY (SELECT max(m.created_at) FROM messages m
                          WHERE m.lead_id = lp.lead_id AND m.lead_phone_id = lp.id AND m.direction = 'inbound') DESC NULLS LAST,
                         lp.position
                LIMIT 1
                """
            ).firstRow
        }
        guard let row else {
            throw DomainError.failedPrecondition("lead_id: the lead has no phone number; add one to the lead first")
        }
        return (UUIDText(try row.decode("id", as: String.self))!, try row.decode("phone"))
    }

    static func day(_ t: Google_Protobuf_Timestamp) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter.string(from: Date(timeIntervalSince1970: Double(t.seconds)))
    }
}

/// The ids a subscription has sent recently, so the replay and the live signals never send a
/// message twice. Bounded: the oldest ids are forgotten first.
struct RecentIDs {
    private var set: Set<String> = []
    private var order: [String] = []
    private var head = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func contains(_ id: String) -> Bool { set.contains(id) }

    /// Adds `id`; false when it was already there.
    mutating func insert(_ id: String) -> Bool {
        guard set.insert(id).inserted else { return false }
        order.append(id)
        if set.count > capacity {
            set.remove(order[head])
            head += 1
            if head > capacity {
                order.removeFirst(head)
                head = 0
            }
        }
        return true
    }
}
