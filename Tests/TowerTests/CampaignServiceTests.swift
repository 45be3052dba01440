import Foundation
import Testing
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

@testable import Tower

/// CampaignService against the real database: audiences, start and queueing, quiet hours,
/// rotation, state transitions, clone, the progress stream and tenant isolation.
@Suite("Campaigns")
struct CampaignServiceTests {
    static func utc(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    @Test func audienceSelectsByListsTagsAndFilters() async throws {
        let f = try await CampaignFixture.make(name: "Audience")
        let travis = try await f.lead(.init(state: "TX", county: "Travis", score: 80))
        let bexar = try await f.lead(.init(state: "TX", county: "Bexar", score: 20))
        let florida = try await f.lead(.init(state: "FL", county: "Miami-Dade", score: 60))
        let granted = try await f.lead(.init(state: "OK", county: "Tulsa", score: 90, phones: [(CampaignFixture.uniquePhone(), "granted")]))
        let hot = try await f.tag("hot", leads: [travis, florida, granted])
        let land = try await f.tag("land", leads: [travis, bexar])
        let list = try await f.list("Mailing 1", leads: [bexar, florida])

        func targets(_ audience: CampaignAudience) async throws -> [String] {
            let campaign = try await f.create(audience)
            _ = try await f.start(campaign.id)
            return try await f.targetLeads(campaign.id)
        }
        var a = CampaignAudience()
        #expect(try await targets(a) == [travis, bexar, florida, granted].sorted())
        a.listIds = [list]
        #expect(try await targets(a) == [bexar, florida].sorted())
        a = CampaignAudience()
        a.tagIds = [hot, land]
        a.tagMatch = .any
        #expect(try await targets(a) == [travis, bexar, florida, granted].sorted())
        a.tagMatch = .all
        #expect(try await targets(a) == [travis])
        // Lists and tags form the base together (union); filters narrow it.
        a = CampaignAudience()
        a.listIds = [list]
        a.tagIds = [land]
        a.states = ["tx"]
        #expect(try await targets(a) == [travis, bexar].sorted())
        a = CampaignAudience()
        a.counties = ["BEXAR COUNTY", "miami-dade"]
        #expect(try await targets(a) == [bexar, florida].sorted())
        a = CampaignAudience()
        a.minScore = 50
        a.maxScore = 85
        #expect(try await targets(a) == [travis, florida].sorted())
        a = CampaignAudience()
        a.consent = [.granted]
        #expect(try await targets(a) == [granted])

        a = CampaignAudience()
        a.minScore = 90
        a.maxScore = 10
        a.states = ["Texas"]
        let invalid = await rpcError { try await f.create(a) }
        #expect(invalid?.code == .invalidArgument)
        #expect(invalid?.message.contains("audience.states[0]") == true)
        #expect(invalid?.message.contains("audience.max_score") == true)
    }

    @Test func optedOutPhonesAreSkippedWithAReason() async throws {
        let f = try await CampaignFixture.make(name: "Opt-outs")
        let (blocked, open) = (CampaignFixture.uniquePhone(), CampaignFixture.uniquePhone())
        let secondPhone = try await f.lead(.init(phones: [(blocked, "unknown"), (open, "unknown")]))
        let onlyOptedOut = CampaignFixture.uniquePhone()
        let gone = try await f.lead(.init(phones: [(onlyOptedOut, "unknown")]))
        let noPhone = try await f.lead(.init(phones: []))
        let fine = try await f.lead(.init())
        try await f.optOut(blocked)
        try await f.optOut(onlyOptedOut)

        let campaign = try await f.create()
        let started = try await f.start(campaign.id)
        #expect(started.targets == 4)
        #expect(started.queued == 2)
        #expect(Dictionary(uniqueKeysWithValues: started.skipped.map { ($0.reason, $0.count) }) == ["no_phone": 1, "opted_out": 1])
        #expect(try await f.targetLeads(campaign.id, status: "skipped") == [gone, noPhone].sorted())
        #expect(try await f.targetLeads(campaign.id, status: "active") == [secondPhone, fine].sorted())
        let recipients = try await f.sql { tx in
            try await tx.query(
                """
                SELECT to_phone::text AS phone FROM messages WHERE campaign_id = \(UUIDText(campaign.id)) ORDER BY 1
                """
            ).map { try $0.decode("phone", as: String.self) }
        }
        #expect(!recipients.contains(blocked))
        #expect(recipients.contains(open))
        // The message follows the shared contract.
        let row = try await f.sql { tx in
            try await tx.query(
                """
                SELECT direction, status, purpose, idempotency_key = id::text AS keyed, segments, encoding, body,
                       phone_number_id IS NULL AS no_sender, template_variant_id IS NOT NULL AS has_variant
                FROM messages WHERE campaign_id = \(UUIDText(campaign.id)) AND to_phone = \(open)
                """
            ).one()
        }
        #expect(try row.decode("direction", as: String.self) == "outbound")
        #expect(try row.decode("status", as: String.self) == "queued")
        #expect(try row.decode("purpose", as: String.self) == "campaign")
        #expect(try row.decode("keyed", as: Bool.self))
        #expect(try row.decode("no_sender", as: Bool.self))
        #expect(try row.decode("has_variant", as: Bool.self))
        #expect(try row.decode("encoding", as: String.self) == "gsm7")
        #expect(try row.decode("segments", as: Int.self) == 1)
        #expect(
            try row.decode("body", as: String.self)
                == "Hi Ana, this is Opt-outs. Interested in selling your Travis land? Reply STOP to opt out.")
    }

    @Test func sendTimesRespectEveryZoneOfTheRecipient() async throws {
        let f = try await CampaignFixture.make(name: "Quiet hours")
        try await f.sql { tx in try await tx.execute("UPDATE orgs SET time_zone = 'America/Los_Angeles' WHERE id = \(f.org.orgID)") }
        let miami = try await f.lead(.init(state: "FL", county: "Miami-Dade", phones: [("+1305" + Self.suffix(), "unknown")]))
        let elPaso = try await f.lead(.init(state: "TX", county: "Travis", phones: [("+1915" + Self.suffix(), "unknown")]))
        let nowhere = try await f.lead(.init(state: nil, county: nil, phones: [("+1500" + Self.suffix(), "unknown")]))
        // 2030-01-16 01:30Z is 20:30 in Miami, 19:30 in Austin, 18:30 in El Paso, 17:30 in LA.
        let evening = try await f.create(start: Self.utc("2030-01-16T01:30:00Z"))
        let started = try await f.start(evening.id)
        #expect(started.queued == 3)
        let times = try await Self.sendTimes(f, evening.id)
        #expect(times[miami]?.after == Self.utc("2030-01-16T13:00:00Z"))  // 08:00 next day in Miami (Florida: 08-20)
        #expect(times[elPaso]?.after == Self.utc("2030-01-16T01:30:00Z"))  // inside both Central and Mountain windows
        #expect(times[nowhere]?.after == Self.utc("2030-01-16T01:30:00Z"))  // org zone (LA): 17:30
        #expect(times[miami]?.states == ["FL"])
        #expect(times[elPaso]?.zones == ["America/Chicago", "America/Denver"])
        #expect(times[nowhere]?.zones == [])
        #expect(started.delayedByQuietHours == 1)

        // 2030-01-15 13:30Z: 07:30 in Austin, 06:30 in El Paso, 05:30 in LA.
        let morning = try await f.create(start: Self.utc("2030-01-15T13:30:00Z"))
        _ = try await f.start(morning.id)
        let early = try await Self.sendTimes(f, morning.id)
        #expect(early[elPaso]?.after == Self.utc("2030-01-15T15:00:00Z"))  // 08:00 Mountain, when both windows hold
        #expect(early[nowhere]?.after == Self.utc("2030-01-15T16:00:00Z"))  // 08:00 in the org's zone
        #expect(early[miami]?.after == Self.utc("2030-01-15T13:30:00Z"))  // 08:30 in Miami

        // One audit event per campaign for the delay, with the count.
        let audit = try await f.sql { tx in
            try await tx.query(
                """
                SELECT metadata->>'messages' AS n FROM audit_events
                WHERE action = 'campaign.quiet_hours_delay' AND target_id = \(morning.id)
                """)
        }
        #expect(audit.count == 1)
        #expect(try audit.first?.decode("n", as: String.self) == "2")
    }

    static func suffix() -> String { String(format: "%07d", Int.random(in: 2_000_000...9_999_999)) }

    static func sendTimes(_ f: CampaignFixture, _ campaignID: String) async throws -> [String: (
        after: Date, states: [String], zones: [String]
    )] {
        try await f.sql { tx in
            var out: [String: (after: Date, states: [String], zones: [String])] = [:]
            for row in try await tx.query(
                """
                SELECT lead_id::text AS lead, send_after, recipient_states, recipient_zones FROM messages
                WHERE campaign_id = \(UUIDText(campaignID))
                """)
            {
                out[try row.decode("lead", as: String.self)] = (
                    try row.decode("send_after", as: Date.self), try row.decode("recipient_states", as: [String].self),
                    try row.decode("recipient_zones", as: [String].self)
                )
            }
            return out
        }
    }

    @Test func variantsRotateEvenly() async throws {
        let f = try await CampaignFixture.make(
            name: "Rotation", variants: ["A {first_name}. Reply STOP to opt out.", "B {first_name}. STOP to end.", "C. STOP to end."])
        for _ in 0..<20 { try await f.lead(.init()) }
        let campaign = try await f.create()
        #expect(try await f.start(campaign.id).queued == 20)
        let counts = try await f.sql { tx in
            try await tx.query(
                """
                SELECT v.position, v.send_count, (SELECT count(*) FROM messages m WHERE m.template_variant_id = v.id) AS used
                FROM template_variants v WHERE v.template_id = \(UUIDText(f.templateID)) ORDER BY v.position
                """
            ).map { (try $0.decode("send_count", as: Int.self), try $0.decode("used", as: Int.self)) }
        }
        #expect(counts.map(\.1) == [7, 7, 6])
        #expect(counts.map(\.0) == counts.map(\.1))
    }

    @Test func stateTransitionsAreChecked() async throws {
        let f = try await CampaignFixture.make(name: "Transitions")
        try await f.lead(.init())
        try await f.lead(.init())
        let client = f.campaigns

        // Nothing to send with: both gaps named at once.
        var bare = CreateCampaignRequest()
        bare.name = "Bare"
        let draft = try await client.createCampaign(bare, options: f.options)
        #expect(draft.state == .draft)
        let missing = await rpcError { try await f.start(draft.id) }
        #expect(missing?.code == .failedPrecondition)
        #expect(missing?.message.contains("no template") == true)
        #expect(missing?.message.contains("no sender numbers") == true)
        // A help template does not fit a broadcast.
        let help = try await f.template(category: "help", variants: ["Help text"])
        var update = UpdateCampaignRequest()
        update.campaignID = draft.id
        update.templateID = help
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["template_id"]
        let wrongCategory = await rpcError { try await client.updateCampaign(update, options: f.options) }
        #expect(wrongCategory?.code == .invalidArgument)
        #expect(wrongCategory?.message.contains("help template") == true)
        // A quarantined pool cannot send.
        var add = AddNumberRequest()
        add.carrierConnectionID = f.connectionID
        add.phone = CampaignFixture.uniquePhone()
        let spare = try await f.numbers.addNumber(add, options: f.options)
        var quarantine = UpdateNumberRequest()
        quarantine.phoneNumberID = spare.id
        quarantine.state = .quarantined
        quarantine.quarantineReason = "carrier filtering (30007)"
        quarantine.updateMask = Google_Protobuf_FieldMask()
        quarantine.updateMask?.paths = ["state"]
        _ = try await f.numbers.updateNumber(quarantine, options: f.options)
        update.templateID = f.templateID
        update.senderNumberIds = [spare.id]
        update.updateMask?.paths = ["template_id", "sender_number_ids"]
        _ = try await client.updateCampaign(update, options: f.options)
        let quarantined = await rpcError { try await f.start(draft.id) }
        #expect(quarantined?.code == .failedPrecondition)
        #expect(quarantined?.message.contains("QUARANTINED") == true)

        var pause = PauseCampaignRequest()
        pause.campaignID = draft.id
        let notRunning = await rpcError { try await client.pauseCampaign(pause, options: f.options) }
        #expect(notRunning?.code == .failedPrecondition)
        #expect(notRunning?.message.contains("is DRAFT; only a RUNNING campaign can be paused") == true)

        update.senderNumberIds = [f.numberID]
        update.updateMask?.paths = ["sender_number_ids"]
        _ = try await client.updateCampaign(update, options: f.options)
        let started = try await f.start(draft.id)
        #expect(started.campaign?.state == .running)
        #expect(started.queued == 2)
        let again = await rpcError { try await f.start(draft.id) }
        #expect(again?.message.contains("is RUNNING; only a DRAFT campaign can be started") == true)
        update.name = "Renamed"
        update.updateMask?.paths = ["name"]
        #expect(await status { try await client.updateCampaign(update, options: f.options) } == .failedPrecondition)

        #expect(try await client.pauseCampaign(pause, options: f.options).state == .paused)
        var resume = ResumeCampaignRequest()
        resume.campaignID = draft.id
        #expect(try await client.resumeCampaign(resume, options: f.options).state == .running)
        let resumedAgain = await rpcError { try await client.resumeCampaign(resume, options: f.options) }
        #expect(resumedAgain?.message.contains("is RUNNING; only a PAUSED campaign can be resumed") == true)

        // Cancel: queued messages become cancelled; the one already sent stays sent.
        try await f.sql { tx in
            try await tx.execute(
                """
                UPDATE messages SET status = 'sent', phone_number_id = \(UUIDText(f.numberID)), from_phone = '+15125550000', sent_at = now()
                WHERE id = (SELECT id FROM messages WHERE campaign_id = \(UUIDText(draft.id)) ORDER BY id LIMIT 1)
                """)
        }
        var cancel = CancelCampaignRequest()
        cancel.campaignID = draft.id
        let cancelled = try await client.cancelCampaign(cancel, options: f.options)
        #expect(cancelled.state == .cancelled)
        #expect(cancelled.cancelTime != nil)
        let statuses = try await f.sql { tx in
            try await tx.query(
                "SELECT status, skip_reason FROM messages WHERE campaign_id = \(UUIDText(draft.id)) ORDER BY status"
            ).map { "\(try $0.decode("status", as: String.self))/\(try $0.decode("skip_reason", as: String?.self) ?? "-")" }
        }
        #expect(statuses == ["cancelled/campaign_cancelled", "sent/-"])
        let cancelAgain = await rpcError { try await client.cancelCampaign(cancel, options: f.options) }
        #expect(cancelAgain?.message.contains("is CANCELLED") == true)

        var list = ListCampaignsRequest()
        list.states = [.cancelled]
        #expect(try await client.listCampaigns(list, options: f.options).campaigns.map(\.id) == [draft.id])
    }

    @Test func resumingACampaignWithNothingLeftCompletesIt() async throws {
        let f = try await CampaignFixture.make(name: "Resume finished")
        try await f.lead(.init())
        let campaign = try await f.create()
        _ = try await f.start(campaign.id)
        var pause = PauseCampaignRequest()
        pause.campaignID = campaign.id
        _ = try await f.campaigns.pauseCampaign(pause, options: f.options)
        // An opt-out cancels the only queued message while the campaign is paused.
        try await f.sql { tx in
            try await tx.execute(
                "UPDATE messages SET status = 'cancelled', skip_reason = 'opted_out' WHERE campaign_id = \(UUIDText(campaign.id))")
        }
        #expect(try await f.campaigns.getCampaign(GetCampaignRequest.with(campaign.id), options: f.options).state == .paused)
        var resume = ResumeCampaignRequest()
        resume.campaignID = campaign.id
        #expect(try await f.campaigns.resumeCampaign(resume, options: f.options).state == .completed)
    }

    @Test func cloneCopiesSettingsIntoADraft() async throws {
        let f = try await CampaignFixture.make(name: "Clone")
        let lead = try await f.lead(.init())
        let tag = try await f.tag("warm", leads: [lead])
        var audience = CampaignAudience()
        audience.tagIds = [tag]
        audience.states = ["TX"]
        audience.minScore = 10
        var request = CreateCampaignRequest()
        request.name = "Original"
        request.audience = audience
        request.templateID = f.templateID
        request.senderNumberIds = [f.numberID]
        request.messagesPerSecond = 0.5
        request.dailyCap = 150
        var schedule = CampaignSchedule()
        var start = Google_Protobuf_Timestamp()
        start.seconds = 1_900_000_000
        schedule.startTime = start
        schedule.basis = .recipientTime
        request.schedule = schedule
        let original = try await f.campaigns.createCampaign(request, options: f.options)
        _ = try await f.start(original.id)

        var clone = CloneCampaignRequest()
        clone.campaignID = original.id
        let copy = try await f.campaigns.cloneCampaign(clone, options: f.options)
        #expect(copy.id != original.id)
        #expect(copy.name == "Original (copy)")
        #expect(copy.state == .draft)
        #expect(copy.clonedFromCampaignID == original.id)
        #expect(copy.audience == original.audience)
        #expect(copy.templateID == f.templateID)
        #expect(copy.senderNumberIds == [f.numberID])
        #expect(copy.messagesPerSecond == 0.5)
        #expect(copy.dailyCap == 150)
        #expect(copy.schedule == original.schedule)
        #expect(copy.startTime == nil)
        // The copy runs on its own.
        #expect(try await f.start(copy.id).queued == 1)
    }

    @Test(.timeLimit(.minutes(1))) func progressStreamFollowsMessagesAndEndsOnCompletion() async throws {
        let f = try await CampaignFixture.make(name: "Progress")
        for _ in 0..<3 { try await f.lead(.init()) }
        let optedOutLater = CampaignFixture.uniquePhone()
        try await f.lead(.init(phones: [(optedOutLater, "unknown")]))
        let campaign = try await f.create()
        _ = try await f.start(campaign.id)
        let ids = try await f.sql { tx in
            // The message to the phone that opts out comes last.
            try await tx.query(
                """
                SELECT id::text AS id FROM messages WHERE campaign_id = \(UUIDText(campaign.id))
                ORDER BY to_phone = \(optedOutLater), id
                """
            )
            .map { try $0.decode("id", as: String.self) }
        }
        #expect(ids.count == 4)

        let (seen, seenContinuation) = AsyncStream<CampaignProgress>.makeStream()
        var watch = WatchCampaignProgressRequest()
        watch.campaignID = campaign.id
        let watcher = Task {
            try await f.campaigns.watchCampaignProgress(watch, options: f.options) { stream in
                var all: [CampaignProgress] = []
                for try await progress in stream {
                    all.append(progress)
                    seenContinuation.yield(progress)
                }
                seenContinuation.finish()
                return all
            }
        }
        var updates = seen.makeAsyncIterator()
        let first = try #require(await updates.next())
        #expect(first.state == .running)
        #expect(first.targets == 4)
        #expect(first.queued == 4)

        let sender = UUIDText(f.numberID)
        let one = UUIDText(ids[0])
        try await f.sql { tx in
            try await tx.execute(
                """
                UPDATE messages SET status = 'sent', phone_number_id = \(sender), from_phone = '+15125550000', sent_at = now()
                WHERE id = \(one)
                """)
        }
        var progress = try #require(await updates.next())
        while progress.sent < 1 { progress = try #require(await updates.next()) }
        #expect(progress.queued == 3)

        let rest = ids[1...].compactMap(UUIDText.init)
        try await f.sql { tx in
            try await tx.execute(
                """
                UPDATE messages SET status = 'delivered', phone_number_id = \(sender), from_phone = '+15125550000',
                    sent_at = now(), delivered_at = now()
                WHERE id = \(rest[0])
                """)
            try await tx.execute(
                "UPDATE messages SET status = 'failed', failed_at = now(), error_code = '30003' WHERE id = \(rest[1])")
            try await tx.execute("INSERT INTO opt_outs (org_id, phone, channel) VALUES (\(f.org.orgID), \(optedOutLater), 'sms_keyword')")
            try await tx.execute(
                """
                UPDATE messages SET status = 'cancelled', skip_reason = 'opted_out'
                WHERE campaign_id = \(UUIDText(campaign.id)) AND to_phone = \(optedOutLater) AND status = 'queued'
                """)
        }
        let all = try await watcher.value
        let last = try #require(all.last)
        #expect(last.state == .completed)
        #expect(last.queued == 0)
        #expect(last.sent + last.delivered + last.failed + last.cancelled == 4)
        #expect(last.optedOut == 1)
        #expect(try await f.campaigns.getCampaign(GetCampaignRequest.with(campaign.id), options: f.options).completeTime != nil)
    }

    @Test func otherTenantsCampaignsAndReferencesAreNotFound() async throws {
        let a = try await CampaignFixture.make(name: "Tenant A campaigns")
        let b = try await CampaignFixture.make(name: "Tenant B campaigns")
        let bLead = try await b.lead(.init())
        let bTag = try await b.tag("b-tag", leads: [bLead])
        let bList = try await b.list("b-list", leads: [bLead])
        let bCampaign = try await b.create()
        let client = a.campaigns
        let options = a.options
        let id = bCampaign.id

        #expect(await status { try await client.getCampaign(GetCampaignRequest.with(id), options: options) } == .notFound)
        var update = UpdateCampaignRequest()
        update.campaignID = id
        update.name = "Hijacked"
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["name"]
        #expect(await status { try await client.updateCampaign(update, options: options) } == .notFound)
        #expect(await status { try await a.start(id) } == .notFound)
        var pause = PauseCampaignRequest()
        pause.campaignID = id
        #expect(await status { try await client.pauseCampaign(pause, options: options) } == .notFound)
        var resume = ResumeCampaignRequest()
        resume.campaignID = id
        #expect(await status { try await client.resumeCampaign(resume, options: options) } == .notFound)
        var cancel = CancelCampaignRequest()
        cancel.campaignID = id
        #expect(await status { try await client.cancelCampaign(cancel, options: options) } == .notFound)
        var clone = CloneCampaignRequest()
        clone.campaignID = id
        #expect(await status { try await client.cloneCampaign(clone, options: options) } == .notFound)
        var watch = WatchCampaignProgressRequest()
        watch.campaignID = id
        #expect(
            await status {
                try await client.watchCampaignProgress(watch, options: options) { stream in
                    for try await _ in stream {}
                }
            } == .notFound)

        // B's template, numbers, lists and tags cannot be used by A.
        #expect(await status { try await a.create(template: b.templateID) } == .notFound)
        #expect(await status { try await a.create(numbers: [b.numberID]) } == .notFound)
        var audience = CampaignAudience()
        audience.listIds = [bList]
        #expect(await status { try await a.create(audience) } == .notFound)
        audience = CampaignAudience()
        audience.tagIds = [bTag]
        #expect(await status { try await a.create(audience) } == .notFound)

        // A's own everything-audience never reaches B's leads.
        try await a.lead(.init())
        let mine = try await a.create()
        #expect(try await a.start(mine.id).targets == 1)
        #expect(try await client.listCampaigns(ListCampaignsRequest(), options: options).campaigns.map(\.id) == [mine.id])
        let bStill = try await b.campaigns.getCampaign(GetCampaignRequest.with(id), options: b.options)
        #expect(bStill.name == "Spring outreach")
        #expect(bStill.state == .draft)
    }
}

extension GetCampaignRequest {
    static func with(_ id: String) -> GetCampaignRequest {
        var request = GetCampaignRequest()
        request.campaignID = id
        return request
    }
}

/// The progress stream over a real loopback HTTP/2 connection (the in-process channel skips the
/// transport).
@Suite("Campaign progress over HTTP/2")
struct CampaignProgressNetworkTests {
    @Test(.timeLimit(.minutes(1))) func cancellingEndsTheStream() async throws {
        let f = try await CampaignFixture.make(name: "Progress over HTTP/2")
        for _ in 0..<2 { try await f.lead(.init()) }
        let campaign = try await f.create(start: Date().addingTimeInterval(86_400))
        _ = try await f.start(campaign.id)
        let server = RPCServer(
            configuration: .init(host: "127.0.0.1", port: 0, interceptors: [f.env.interceptor]),
            services: [NumberServiceImpl(store: f.env.store), CampaignServiceImpl(store: f.env.store)])
        let address = try await server.start()
        let channel = HTTP2ClientChannel(host: "127.0.0.1", port: address.port!)
        let client = CampaignService.Client(channel: channel)
        let (seen, seenContinuation) = AsyncStream<CampaignProgress>.makeStream()
        var watch = WatchCampaignProgressRequest()
        watch.campaignID = campaign.id
        let watcher = Task {
            try await client.watchCampaignProgress(watch, options: f.options) { stream in
                var all: [CampaignProgress] = []
                for try await progress in stream {
                    all.append(progress)
                    seenContinuation.yield(progress)
                }
                return all
            }
        }
        var updates = seen.makeAsyncIterator()
        let first = try #require(await updates.next())
        #expect(first.state == .running)
        #expect(first.queued == 2)
        var cancel = CancelCampaignRequest()
        cancel.campaignID = campaign.id
        _ = try await client.cancelCampaign(cancel, options: f.options)
        let all = try await watcher.value
        let last = try #require(all.last)
        #expect(last.state == .cancelled)
        #expect(last.cancelled == 2)
        #expect(last.queued == 0)
        await channel.close()
        await server.shutdown(gracePeriod: .seconds(1))
    }
}
