import Foundation
import Logging
import TowerProto
import TowerRPC
import TowerStore

/// `ctower demo`: the product's main job end to end, with nothing configured. A private
/// PostgreSQL and the mock carrier; an agency with one client org; a messy generated lead file
/// imported through LeadService; the starter template library; a broadcast campaign through a
/// pool of numbers; the mock's simulated replies (interest, STOP, HELP, ALTO) handled by the
/// inbound pipeline. Every step is a real RPC over HTTP/2 on loopback, as any client would make.
public struct DemoRunner: Sendable {
    public struct Options: Sendable {
        /// Rows in the generated lead file.
        public var leads = 10_000
        public var seed: UInt64 = 2026
        /// Where the demo's own database and keys live; wiped at the start of every run.
        public var home = ".ctower/demo"
        /// Share of delivered messages the mock carrier answers.
        public var replyRate = 0.12
        /// Sender numbers in the campaign's pool, and each one's rate.
        public var numbers = 5
        public var messagesPerSecondPerNumber = 100.0
        /// How long to wait after the campaign for delivery receipts and replies to settle.
        public var settleTimeout: Duration = .seconds(30)
        /// Keep quiet hours on the real clock even when the country is asleep (the campaign then
        /// waits for 08:00 in each recipient's zone, which the demo reports instead of waiting).
        public var realClock = false
        public var pluginDirectories = [CarrierRegistry.Configuration.executableDirectory]
        public var logger = Logger(label: "ctower.demo")

        public init() {}
    }

    /// What the demo reports while it runs.
    public enum Event: Sendable {
        case step(String)
        case progress(label: String, done: Int64, total: Int64)
        case note(String)
    }

    public struct Summary: Sendable {
        public var rows: Int64 = 0
        public var imported: Int64 = 0
        public var merged: Int64 = 0
        public var duplicates: Int64 = 0
        public var invalid: Int64 = 0
        public var targets: Int64 = 0
        public var queued: Int64 = 0
        public var sent: Int64 = 0
        public var delivered: Int64 = 0
        public var failed: Int64 = 0
        public var stillQueued: Int64 = 0
        /// Sent, and the carrier has not confirmed delivery (yet).
        public var awaitingReceipt: Int64 = 0
        public var delayedByQuietHours: Int64 = 0
        public var skipped: [String: Int64] = [:]
        public var replies: Int64 = 0
        public var optOuts: Int64 = 0
        public var helpRequests: Int64 = 0
        public var complianceReplies: Int64 = 0
        public var elapsed: Duration = .zero
    }

    public var options: Options

    public init(options: Options) { self.options = options }

    public func run(_ report: @escaping @Sendable (Event) -> Void) async throws -> Summary {
        let clock = ContinuousClock()
        let began = clock.now
        try? FileManager.default.removeItem(atPath: options.home)
        try FileManager.default.createDirectory(atPath: options.home, withIntermediateDirectories: true)

        report(.step("Starting a private PostgreSQL and the API on loopback"))
        let password = OpaqueSecret.newToken(tag: "demo")
        var serverOptions = TowerServer.Options()
        serverOptions.home = options.home
        serverOptions.port = 0
        serverOptions.logger = options.logger
        serverOptions.pluginDirectories = options.pluginDirectories
        if !options.realClock, let shifted = Self.businessHoursClock() {
            serverOptions.complianceClock = shifted
            report(
                .note(
                    "It is \(Self.chicagoTime(Date())) in Chicago: US quiet hours. Quiet hours are judged at \(Self.chicagoTime(Date().addingTimeInterval(shifted.shift))) Central for this demo (--real-clock to keep the real time)"
                ))
        }
        serverOptions.initialOrg = TowerServer.InitialOrg(
            name: "Lone Star Land Partners", kind: .agency, ownerEmail: "owner@lonestar-land.example", ownerPassword: password)
        let server = try await TowerServer.start(serverOptions)
        let channel = HTTP2ClientChannel(host: "127.0.0.1", port: server.address.port ?? 0)
        do {
            let summary = try await drive(server: server, channel: channel, password: password, report: report)
            await channel.close()
            await server.shutdown(grace: .seconds(5))
            var result = summary
            result.elapsed = clock.now - began
            return result
        } catch {
            await channel.close()
            await server.shutdown(grace: .seconds(1))
            throw error
        }
    }

    private func drive(
        server: TowerServer, channel: HTTP2ClientChannel, password: String, report: @escaping @Sendable (Event) -> Void
    ) async throws -> Summary {
        var summary = Summary()
        var login = LoginRequest()
        login.email = "owner@lonestar-land.example"
        login.password = password
        let session = try await AuthService.Client(channel: channel).login(login)
        let agency = CallOptions(metadata: ["authorization": .string("Bearer \(session.accessToken)")])

        report(.step("Creating the agency's client org \"Hill Country Acres\""))
        var clientRequest = CreateClientOrgRequest()
        clientRequest.name = "Hill Country Acres"
        var settings = OrgSettings()
        settings.brandName = "Hill Country Acres"
        settings.timeZone = "America/Chicago"
        clientRequest.settings = settings
        clientRequest.requestID = "demo-client-org"
        let client = try await OrgService.Client(channel: channel).createClientOrg(clientRequest, options: agency)
        var call = agency
        call.metadata.add("x-ctower-org", client.id)

        report(.step("Connecting the mock carrier and adding \(options.numbers) sender numbers"))
        var connectionRequest = CreateCarrierConnectionRequest()
        connectionRequest.carrier = "mock"
        connectionRequest.name = "Mock carrier"
        connectionRequest.credentials = ["api_key": OpaqueSecret.newToken(tag: "mock")]
        connectionRequest.settings = [
            "seed": String(options.seed), "reply_rate": String(options.replyRate), "delivery_rate": "0.96",
            "delivery_delay_ms": "50", "ledger_path": options.home + "/mock-ledger.jsonl",
        ]
        let connection = try await IntegrationService.Client(channel: channel).createCarrierConnection(connectionRequest, options: call)
        let numbers = NumberService.Client(channel: channel)
        var numberIDs: [String] = []
        for index in 0..<options.numbers {
            var add = AddNumberRequest()
            add.carrierConnectionID = connection.id
            add.phone = "+1512867\(String(format: "%04d", 2_100 + index))"
            add.kind = .longCode
            add.messagesPerSecond = options.messagesPerSecondPerNumber
            add.dailyCap = Int32(max(200, options.leads))
            add.initialState = .active
            numberIDs.append(try await numbers.addNumber(add, options: call).id)
        }

        report(.step("Installing the English and Spanish starter templates"))
        let library = try await TemplateService.Client(channel: channel).installStarterLibrary(
            InstallStarterLibraryRequest(), options: call)
        guard let template = library.installed.first(where: { $0.category == .initial && $0.language == .en }) else {
            throw DomainError.failedPrecondition("the starter library has no English initial template")
        }
        report(
            .note(
                "\(library.installed.count) templates, \(library.installed.reduce(0) { $0 + $1.variants.count }) variants; campaign uses \"\(template.name)\""
            ))

        report(.step("Importing \(options.leads) generated landowner leads (messy phones, duplicates)"))
        let job = try await importLeads(channel: channel, call: call, report: report)
        summary.rows = job.totalRows
        summary.imported = job.newRows
        summary.merged = job.mergedRows
        summary.duplicates = job.duplicateRows
        summary.invalid = job.invalidRows

        report(.step("Running a broadcast campaign through \(options.numbers) numbers"))
        var create = CreateCampaignRequest()
        create.name = "Demo broadcast"
        create.templateID = template.id
        create.senderNumberIds = numberIDs
        let campaigns = CampaignService.Client(channel: channel)
        let campaign = try await campaigns.createCampaign(create, options: call)
        var start = StartCampaignRequest()
        start.campaignID = campaign.id
        let started = try await campaigns.startCampaign(start, options: call)
        summary.targets = started.targets
        summary.queued = started.queued
        summary.delayedByQuietHours = started.delayedByQuietHours
        if started.delayedByQuietHours > 0 {
            report(
                .note(
                    "\(started.delayedByQuietHours) messages wait for their recipients' quiet hours to end (08:00 local; 20:00 close in FL/OK/MD)"
                ))
        }
        let progress = try await watchCampaign(
            campaigns, id: campaign.id, call: call, sendableNow: started.queued - started.delayedByQuietHours, report: report)
        summary.stillQueued = progress.queued
        for skip in progress.skippedByReason { summary.skipped[skip.reason] = skip.count }

        report(.step("Waiting for delivery receipts and replies"))
        let settled = try await settle(server: server, orgID: client.id, report: report)
        summary.replies = settled.replies
        summary.optOuts = settled.optOuts
        summary.helpRequests = settled.help
        summary.complianceReplies = settled.complianceReplies
        let counts = try await outboundCounts(server: server, orgID: client.id, campaignID: campaign.id)
        summary.sent = counts.sent
        summary.delivered = counts.delivered
        summary.failed = counts.failed
        summary.awaitingReceipt = counts.awaiting
        return summary
    }

    private func importLeads(channel: any RPCChannel, call: CallOptions, report: @escaping @Sendable (Event) -> Void) async throws
        -> ImportJob
    {
        let bytes = Array(DemoLeadFile(rows: options.leads, seed: options.seed).csv().utf8)
        let leads = LeadService.Client(channel: channel)
        let uploaded = try await leads.importLeads(options: call) { writer in
            var header = ImportHeader()
            header.fileName = "demo-landowners.csv"
            header.format = .csv
            var first = ImportLeadsRequest()
            first.payload = .header(header)
            try await writer.write(first)
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + 256 * 1024, bytes.count)
                var chunk = ImportLeadsRequest()
                chunk.payload = .chunk(Array(bytes[offset..<end]))
                try await writer.write(chunk)
                offset = end
                report(.progress(label: "upload", done: Int64(offset), total: Int64(bytes.count)))
            }
        }
        var watch = WatchImportJobRequest()
        watch.importJobID = uploaded.id
        let rows = Int64(options.leads)
        let final = try await leads.watchImportJob(watch, options: call) { stream in
            var last = uploaded
            for try await job in stream {
                last = job
                report(.progress(label: "import", done: job.totalRows, total: rows))
            }
            return last
        }
        guard final.status == .completed else {
            throw DomainError.failedPrecondition("the import ended \(final.status): \(final.failureReason)")
        }
        return final
    }

    private func watchCampaign(
        _ campaigns: CampaignService.Client, id: String, call: CallOptions, sendableNow: Int64, report: @escaping @Sendable (Event) -> Void
    ) async throws -> CampaignProgress {
        var watch = WatchCampaignProgressRequest()
        watch.campaignID = id
        return try await campaigns.watchCampaignProgress(watch, options: call) { stream in
            var last = CampaignProgress()
            for try await progress in stream {
                last = progress
                let left = progress.sent + progress.delivered + progress.failed + progress.skipped + progress.cancelled
                report(.progress(label: "campaign", done: left, total: max(progress.targets, 1)))
                // Messages held by quiet hours go out hours from now; the demo stops watching
                // once everything that may be sent now has left the queue.
                if progress.queued <= progress.targets - max(sendableNow, 0) - progress.skipped, progress.queued > 0,
                    left >= sendableNow
                {
                    break
                }
            }
            return last
        }
    }

    struct Settled {
        var replies: Int64 = 0
        var optOuts: Int64 = 0
        var help: Int64 = 0
        var complianceReplies: Int64 = 0
    }

    /// Waits until no new receipts, replies or compliance answers arrive for two seconds.
    private func settle(server: TowerServer, orgID: String, report: @escaping @Sendable (Event) -> Void) async throws -> Settled {
        guard let org = OrgID(orgID) else { throw DomainError.invalid("org_id", "the demo's client org id is not a UUID") }
        let clock = ContinuousClock()
        let deadline = clock.now + options.settleTimeout
        var last: [Int64] = []
        var stableSince = clock.now
        var lastReport = clock.now
        var settled = Settled()
        while clock.now < deadline {
            let row = try await server.store.withTransaction(tenant: org, readOnly: true) { tx in
                try await tx.query(
                    """
                    SELECT
                      (SELECT count(*) FROM messages WHERE direction = 'inbound')::int8 AS replies,
                      (SELECT count(*) FROM opt_outs WHERE revoked_at IS NULL)::int8 AS opt_outs,
                      (SELECT count(*) FROM messages WHERE direction = 'outbound' AND purpose = 'compliance'
                         AND status IN ('queued', 'claimed', 'sending'))::int8 AS compliance,
                      (SELECT count(*) FROM messages WHERE direction = 'outbound' AND purpose = 'compliance'
                         AND status IN ('sent', 'delivered', 'undelivered'))::int8 AS compliance_sent,
                      (SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'sent')::int8 AS awaiting_receipt
                    """
                ).one()
            }
            settled.replies = try row.decode("replies")
            settled.optOuts = try row.decode("opt_outs")
            settled.complianceReplies = try row.decode("compliance_sent")
            let complianceWaiting: Int64 = try row.decode("compliance")
            let awaiting: Int64 = try row.decode("awaiting_receipt")
            let now = [settled.replies, settled.optOuts, complianceWaiting, settled.complianceReplies, awaiting]
            if now != last {
                last = now
                stableSince = clock.now
                if clock.now - lastReport >= .seconds(2) {
                    lastReport = clock.now
                    report(
                        .note(
                            "replies \(settled.replies), opt-outs \(settled.optOuts), compliance answers sent \(settled.complianceReplies)")
                    )
                }
            } else if clock.now - stableSince >= .seconds(2), complianceWaiting == 0,
                awaiting == 0 || clock.now - stableSince >= .seconds(6)
            {
                // Nothing moved for a while: a receipt still missing is reported, not waited for.
                break
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        if clock.now >= deadline, last.count == 5 {
            report(
                .note(
                    "stopped waiting after \(options.settleTimeout): \(last[4]) messages still without a delivery receipt, \(last[2]) compliance answers not yet sent"
                ))
        }
        settled.help = try await server.store.withTransaction(tenant: org, readOnly: true) { tx in
            try await tx.query(
                """
                SELECT count(*)::int8 AS help FROM messages
                WHERE direction = 'inbound' AND upper(btrim(body)) IN ('HELP', 'INFO', 'AYUDA')
                """
            ).one().decode("help")
        }
        return settled
    }

    private func outboundCounts(server: TowerServer, orgID: String, campaignID: String) async throws -> (
        sent: Int64, delivered: Int64, failed: Int64, awaiting: Int64
    ) {
        guard let org = OrgID(orgID), let campaign = UUIDText(campaignID) else {
            throw DomainError.invalid("campaign_id", "the demo's ids are not UUIDs")
        }
        let row = try await server.store.withTransaction(tenant: org, readOnly: true) { tx in
            try await tx.query(
                """
                SELECT count(*) FILTER (WHERE sent_at IS NOT NULL)::int8 AS sent,
                       count(*) FILTER (WHERE status = 'delivered')::int8 AS delivered,
                       count(*) FILTER (WHERE status IN ('failed', 'undelivered'))::int8 AS failed,
                       count(*) FILTER (WHERE status = 'sent')::int8 AS awaiting
                FROM messages WHERE campaign_id = \(campaign)
                """
            ).one()
        }
        return (try row.decode("sent"), try row.decode("delivered"), try row.decode("failed"), try row.decode("awaiting"))
    }

    static let central = TimeZone(identifier: "America/Chicago")!

    /// The demo's leads live between Eastern and Pacific time. When it is not between 10:00 and
    /// 18:00 Central (12:00-20:00 Eastern would leave someone outside 08:00-20:00), the demo
    /// judges quiet hours as if it were 11:00 Central, so every window is open.
    static func businessHoursClock(now: Date = Date()) -> ComplianceClock? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = central
        let hour = calendar.component(.hour, from: now)
        if (10..<18).contains(hour) { return nil }
        return ComplianceClock.at(hour: 11, in: central, from: now)
    }

    static func chicagoTime(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = central
        let parts = calendar.dateComponents([.hour, .minute], from: date)
        return String(format: "%02d:%02d", parts.hour ?? 0, parts.minute ?? 0)
    }
}
