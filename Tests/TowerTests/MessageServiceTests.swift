import Foundation
import Testing
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

@testable import Tower

func timestamp(_ date: Date) -> Google_Protobuf_Timestamp {
    var t = Google_Protobuf_Timestamp()
    t.seconds = Int64(date.timeIntervalSince1970.rounded(.down))
    t.nanos = Int32((date.timeIntervalSince1970 - Double(t.seconds)) * 1e9)
    return t
}

/// MessageService over the auth interceptor and the real database.
@Suite("Message service")
struct MessageServiceTests {
    @Test func threadInboxAndManualReplies() async throws {
        let f = try await InboundFixture.make("Messages thread")
        let ada = try await f.addLead()
        _ = try await f.receive(from: ada.phone, body: "Hi")
        _ = try await f.receive(from: ada.phone, body: "What's the price?")
        let nearMiss = try #require(try await f.receive(from: ada.phone, body: "Can you stop by tomorrow?"))

        var send = SendMessageRequest()
        send.leadID = ada.lead
        send.body = "Hi Ada, we can offer $42,000 for the 40 acres."
        send.requestID = "reply-1"
        let manual = try await f.messages.sendMessage(send, options: f.options)
        #expect(manual.purpose == .manual && manual.status == .queued && manual.direction == .outbound)
        #expect(manual.toPhone == ada.phone && manual.leadPhoneID == ada.leadPhone)
        #expect(manual.phoneNumberID == f.numberID, "replies go from the number the lead wrote to")
        #expect(manual.segments == 1 && manual.encoding == "gsm7" && manual.sendAfter != nil)
        // A retry with the same request_id is the same message.
        #expect(try await f.messages.sendMessage(send, options: f.options).id == manual.id)
        let row = try await f.rows(
            "SELECT idempotency_key, recipient_states, recipient_zones FROM messages WHERE id = \(UUIDText(manual.id))"
        ).one()
        #expect(try row.decode("idempotency_key", as: String.self) == manual.id)
        #expect(try row.decode("recipient_states", as: [String].self) == ["TX"])
        #expect(try row.decode("recipient_zones", as: [String].self) == ["America/Chicago", "America/Denver"])
        #expect(try await f.count("SELECT count(*) FROM audit_events WHERE action = 'message.send_manual'") == 1)

        // The thread: newest first, two per page.
        var list = ListThreadRequest()
        list.leadID = ada.lead
        list.page = PageRequest()
        list.page?.pageSize = 2
        let first = try await f.messages.listThread(list, options: f.options)
        #expect(first.messages.map(\.id) == [manual.id, nearMiss.messageID])
        #expect(first.messages[1].intent == .possibleRevocation && first.messages[1].needsReview)
        #expect(first.messages[1].direction == .inbound && first.messages[1].receiveTime != nil)
        list.page?.pageToken = try #require(first.page?.nextPageToken)
        let second = try await f.messages.listThread(list, options: f.options)
        #expect(second.messages.map(\.body) == ["What's the price?", "Hi"])
        #expect(second.page?.nextPageToken == "")
        list.page?.pageToken = "garbage!"
        #expect(await status { try await f.messages.listThread(list, options: f.options) } == .invalidArgument)

        var get = GetMessageRequest()
        get.messageID = manual.id
        #expect(try await f.messages.getMessage(get, options: f.options).body == send.body)
        get.messageID = "nope"
        #expect(await status { try await f.messages.getMessage(get, options: f.options) } == .invalidArgument)
        get.messageID = UUID().uuidString
        #expect(await status { try await f.messages.getMessage(get, options: f.options) } == .notFound)

        // The inbox: one entry per lead, by latest inbound; an unknown sender shows its number.
        let stranger = InboundFixture.randomPhone()
        _ = try await f.receive(from: stranger, body: "Who is this?")
        var inbox = ListInboxRequest()
        inbox.page = PageRequest()
        inbox.page?.pageSize = 1
        let top = try await f.messages.listInbox(inbox, options: f.options)
        #expect(top.entries.count == 1)
        #expect(top.entries[0].displayName == stranger && top.entries[0].unknownSender && !top.entries[0].needsReview)
        inbox.page?.pageToken = try #require(top.page?.nextPageToken)
        let next = try await f.messages.listInbox(inbox, options: f.options)
        #expect(next.entries.map(\.displayName) == ["Ada Lovelace"])
        #expect(next.entries[0].latestInbound?.id == nearMiss.messageID && next.entries[0].needsReview)
        #expect(next.page?.nextPageToken == "")
        inbox.page = nil
        inbox.needsReviewOnly = true
        #expect(try await f.messages.listInbox(inbox, options: f.options).entries.map(\.leadID) == [ada.lead])
        #expect(next.entries[0].unreadCount == 3 && top.entries[0].unreadCount == 1)

        // Reading Ada's thread clears her unread count; the stranger stays unread.
        var read = MarkThreadReadRequest()
        read.leadID = ada.lead
        #expect(try await f.messages.markThreadRead(read, options: f.options).marked == 3)
        #expect(try await f.messages.markThreadRead(read, options: f.options).marked == 0)
        inbox.needsReviewOnly = false
        inbox.unreadOnly = true
        #expect(try await f.messages.listInbox(inbox, options: f.options).entries.map(\.displayName) == [stranger])
        list.page = nil
        #expect(
            try await f.messages.listThread(list, options: f.options).messages.filter { $0.direction == .inbound }.allSatisfy {
                $0.readTime != nil
            })
        inbox.unreadOnly = false

        // Once Ada opts out, a manual message is refused, naming the opt-out.
        _ = try await f.receive(from: ada.phone, body: "STOP")
        send.requestID = ""
        let refused = await rpcError { try await f.messages.sendMessage(send, options: f.options) }
        #expect(refused?.code == .failedPrecondition)
        #expect(refused?.message.contains(ada.phone) == true && refused?.message.contains("replied STOP") == true)
        #expect(refused?.message.contains("START") == true)
        #expect(try await f.messages.listInbox(inbox, options: f.options).entries.first?.optedOut == true)
    }

    @Test func sendMessageValidatesEveryField() async throws {
        let f = try await InboundFixture.make("Messages validation")
        let ada = try await f.addLead()
        var send = SendMessageRequest()
        send.leadID = "not-a-lead"
        send.body = " "
        let invalid = await rpcError { try await f.messages.sendMessage(send, options: f.options) }
        #expect(invalid?.code == .invalidArgument)
        #expect(invalid?.message.contains("lead_id") == true && invalid?.message.contains("body") == true)

        send.leadID = ada.lead
        send.body = String(repeating: "¿Cuánto ofrecerían por el terreno? ", count: 40)
        let long = await rpcError { try await f.messages.sendMessage(send, options: f.options) }
        #expect(long?.code == .invalidArgument && long?.message.contains("UCS-2") == true, "\(String(describing: long))")

        send.body = "Hello"
        send.leadPhoneID = UUID().uuidString
        #expect(await status { try await f.messages.sendMessage(send, options: f.options) } == .notFound)
        send.leadPhoneID = ""
        send.leadID = UUID().uuidString
        #expect(await status { try await f.messages.sendMessage(send, options: f.options) } == .notFound)

        // A request id names one message: reusing it for another lead is an error, not a resend.
        let grace = try await f.addLead(firstName: "Grace")
        send.leadID = ada.lead
        send.requestID = "same"
        _ = try await f.messages.sendMessage(send, options: f.options)
        send.leadID = grace.lead
        #expect(await status { try await f.messages.sendMessage(send, options: f.options) } == .invalidArgument)

        // No inbound yet: the dispatcher picks the number.
        send.requestID = ""
        #expect(try await f.messages.sendMessage(send, options: f.options).phoneNumberID == "")
    }

    /// SubscribeInbound delivers the org's inbound messages, replayed from `since` and then live,
    /// and never another org's, even when the other org's message commits first.
    @Test(.timeLimit(.minutes(1))) func subscriptionsSeeOnlyTheirOrgsMessages() async throws {
        let a = try await InboundFixture.make("Subscriber A")
        let b = try await InboundFixture.make("Subscriber B")
        let since = timestamp(Date().addingTimeInterval(-2))
        let aLead = try await a.addLead()
        let bLead = try await b.addLead()
        // B's own lead has the same phone as A's sender: still B's message, B's thread.
        let shared = aLead.phone
        try await b.addLead(phone: shared, firstName: "Shared")

        let b1 = try #require(try await b.receive(from: bLead.phone, body: "B one"))
        let a1 = try #require(try await a.receive(from: aLead.phone, body: "A one"))
        var request = SubscribeInboundRequest()
        request.since = since
        let seenByA = try await a.messages.subscribeInbound(request, options: a.options) { stream in
            var seen: [Message] = []
            for try await message in stream {
                seen.append(message)
                if seen.count == 1 {
                    // Registered now (the replay came after registration): these arrive live.
                    _ = try await b.receive(from: shared, body: "B two, from the shared phone")
                    _ = try await a.receive(from: aLead.phone, body: "STOP")
                }
                if seen.count == 2 { break }
            }
            return seen
        }
        #expect(seenByA.map(\.leadID) == [aLead.lead, aLead.lead])
        #expect(seenByA.first?.id == a1.messageID)
        #expect(seenByA.last?.body == "STOP" && seenByA.last?.intent == .optOut)

        let seenByB = try await b.messages.subscribeInbound(request, options: b.options) { stream in
            var seen: [Message] = []
            for try await message in stream {
                seen.append(message)
                if seen.count == 2 {
                    _ = try await a.receive(from: aLead.phone, body: "A three")
                    _ = try await b.receive(from: bLead.phone, body: "B three")
                }
                if seen.count == 3 { break }
            }
            return seen
        }
        #expect(seenByB.map(\.body) == ["B one", "B two, from the shared phone", "B three"])
        #expect(seenByB.first?.id == b1.messageID)
        #expect(!seenByB.contains { $0.leadID == aLead.lead })

        // A's STOP opted the phone out of A only; B's lead with that phone is not opted out.
        #expect(try await a.count("SELECT count(*) FROM opt_outs WHERE phone = \(shared)") == 1)
        #expect(try await b.count("SELECT count(*) FROM opt_outs WHERE phone = \(shared)") == 0)
        #expect(try await b.count("SELECT count(*) FROM lead_phones WHERE phone = \(shared) AND consent_status = 'revoked'") == 0)
        // And neither inbox shows the other's leads.
        let aInbox = try await a.messages.listInbox(ListInboxRequest(), options: a.options)
        #expect(aInbox.entries.map(\.leadID) == [aLead.lead])
        let bInbox = try await b.messages.listInbox(ListInboxRequest(), options: b.options)
        #expect(Set(bInbox.entries.map(\.leadID)).count == 2 && !bInbox.entries.contains { $0.leadID == aLead.lead })
    }

    /// The isolation-matrix cases for MessageService: another org's ids are NOT_FOUND.
    @Test func crossTenantIdsAreNotFound() async throws {
        let a = try await InboundFixture.make("Messages tenant A")
        let b = try await InboundFixture.make("Messages tenant B")
        let bLead = try await b.addLead()
        let bMessage = try #require(try await b.receive(from: bLead.phone, body: "Hello B"))

        var get = GetMessageRequest()
        get.messageID = bMessage.messageID
        #expect(await status { try await a.messages.getMessage(get, options: a.options) } == .notFound)
        var thread = ListThreadRequest()
        thread.leadID = bLead.lead
        #expect(await status { try await a.messages.listThread(thread, options: a.options) } == .notFound)
        var send = SendMessageRequest()
        send.leadID = bLead.lead
        send.body = "Hijack"
        #expect(await status { try await a.messages.sendMessage(send, options: a.options) } == .notFound)
        send.leadID = try await a.addLead().lead
        send.leadPhoneID = bLead.leadPhone
        #expect(await status { try await a.messages.sendMessage(send, options: a.options) } == .notFound)

        let bFlagged = try #require(try await b.receive(from: bLead.phone, body: "can you stop by?"))
        var resolve = ResolveReviewRequest()
        resolve.messageID = bFlagged.messageID
        resolve.resolution = .confirmed
        #expect(await status { try await a.messages.resolveReview(resolve, options: a.options) } == .notFound)
        var read = MarkThreadReadRequest()
        read.leadID = bLead.lead
        #expect(await status { try await a.messages.markThreadRead(read, options: a.options) } == .notFound)
        #expect(try await b.count("SELECT count(*) FROM messages WHERE read_at IS NOT NULL") == 0)
        #expect(try await b.count("SELECT count(*) FROM inbound_reviews WHERE status = 'open'") == 1)
        #expect(try await b.count("SELECT count(*) FROM opt_outs") == 0)

        #expect(try await b.count("SELECT count(*) FROM messages WHERE direction = 'outbound'") == 0)
        #expect(try await b.messages.listThread(thread, options: b.options).messages.map(\.id) == [bFlagged.messageID, bMessage.messageID])
    }

    @Test func reviewsAreResolvedByPeople() async throws {
        let f = try await InboundFixture.make("Messages reviews")
        try await f.setBrand("Quiet Co", freeTextOptOut: false)
        let ada = try await f.addLead()
        let (_, queued) = try await f.queueCampaignMessage(lead: ada.lead, leadPhone: ada.leadPhone, phone: ada.phone)
        let revocation = try #require(try await f.receive(from: ada.phone, body: "take me off your list"))
        let nearMiss = try #require(try await f.receive(from: ada.phone, body: "stop by the lot on friday?"))
        let plain = try #require(try await f.receive(from: ada.phone, body: "ok"))

        var resolve = ResolveReviewRequest()
        resolve.messageID = nearMiss.messageID
        #expect(await status { try await f.messages.resolveReview(resolve, options: f.options) } == .invalidArgument)
        resolve.resolution = .dismissed
        let dismissed = try await f.messages.resolveReview(resolve, options: f.options)
        #expect(!dismissed.needsReview)
        #expect(try await f.count("SELECT count(*) FROM opt_outs") == 0)
        #expect(await status { try await f.messages.resolveReview(resolve, options: f.options) } == .failedPrecondition)
        resolve.messageID = plain.messageID
        #expect(await status { try await f.messages.resolveReview(resolve, options: f.options) } == .failedPrecondition)

        // Confirming the free-text revocation (the org does not act on free text by itself) opts
        // the phone out now and cancels its queue; the person is in the audit trail.
        resolve.messageID = revocation.messageID
        resolve.resolution = .confirmed
        #expect(try await f.messages.resolveReview(resolve, options: f.options).needsReview == false)
        #expect(try await f.count("SELECT count(*) FROM opt_outs WHERE phone = \(ada.phone) AND channel = 'manual'") == 1)
        #expect(try await f.count("SELECT count(*) FROM messages WHERE id = \(UUIDText(queued)) AND status = 'cancelled'") == 1)
        #expect(try await f.replies(to: ada.phone).isEmpty)
        let audit = try await f.rows(
            "SELECT action FROM audit_events WHERE actor_user_id IS NOT NULL AND action IN ('opt_out.record', 'inbound.resolve_review') ORDER BY id"
        ).map { try $0.decode("action", as: String.self) }
        #expect(audit == ["inbound.resolve_review", "opt_out.record", "inbound.resolve_review"])
        var inbox = ListInboxRequest()
        inbox.needsReviewOnly = true
        #expect(try await f.messages.listInbox(inbox, options: f.options).entries.isEmpty)
    }

    /// Notifications sent while the LISTEN connection was down are lost; after the reconnect
    /// marker a subscription re-reads the recent past and delivers what it missed, once.
    @Test(.timeLimit(.minutes(1))) func aSubscriptionCatchesUpAfterTheListenerReconnects() async throws {
        let f = try await InboundFixture.make("Messages reconnect")
        // A feed on a channel nobody notifies: every notification is "missed".
        let deaf = InboundFeed(store: f.env.store, channel: "ctower_inbound_deaf_\(UUID().uuidString.prefix(8).lowercased())")
        let channel = InProcessChannel(
            services: f.env.services() + [MessageServiceImpl(store: f.env.store, feed: deaf)], interceptors: [f.env.interceptor])
        let lead = try await f.addLead()
        let early = try #require(try await f.receive(from: lead.phone, body: "before the subscription"))
        var request = SubscribeInboundRequest()
        request.since = timestamp(Date().addingTimeInterval(-1))
        let seen = try await MessageService.Client(channel: channel).subscribeInbound(request, options: f.options) { stream in
            var seen: [Message] = []
            for try await message in stream {
                seen.append(message)
                if seen.count == 1 {
                    _ = try await f.receive(from: lead.phone, body: "missed while LISTEN was down")
                    await deaf.announceReconnect()
                }
                if seen.count == 2 { break }
            }
            return seen
        }
        #expect(seen.map(\.body) == ["before the subscription", "missed while LISTEN was down"])
        #expect(seen.first?.id == early.messageID)
        await deaf.shutdown()
    }

    @Test func emptyTextArraysBindAsTextArrays() {
        // Regression: an empty [String] used to be bound as bytea.
        #expect([String]().sqlBinding == .text("{}", typeOID: PostgresType.textArray))
        #expect([UInt8]().sqlBinding == .binary([], typeOID: PostgresType.bytea))
        #expect([UInt8]([7]).sqlBinding == .binary([7], typeOID: PostgresType.bytea))
    }
}
