import Foundation
import TowerCarrierHost
import TowerStore

@testable import Tower

/// An org ready to send through the mock carrier: a sealed connection, sender numbers, a running
/// campaign with those numbers, and messages queued the way the contract says (SQL here, since
/// the CampaignService lives on another branch).
struct DispatchFixture: Sendable {
    let env: IdentityEnvironment
    let org: OrgID
    let connectionID: UUID
    let campaignID: UUID
    let numbers: [(id: UUID, phone: String)]
    let ledgerPath: String
    let directory: String
    /// The org owner's sign-in.
    let ownerEmail: String
    let ownerPassword: String

    static let pluginDirectory = IntegrationServiceTests.pluginDirectory
    static var binariesBuilt: Bool {
        ["ctower", "ctower-carrier-mock"].allSatisfy { FileManager.default.isExecutableFile(atPath: pluginDirectory + "/" + $0) }
    }
    static let missing = "build first: swift build --build-tests builds ctower and ctower-carrier-mock next to the tests"

    static let registry: CarrierRegistry = {
        var configuration = CarrierRegistry.Configuration(pluginDirectories: [pluginDirectory], searchPATH: false)
        configuration.adjust = { $0.shutdownGrace = .seconds(1) }
        return CarrierRegistry(configuration: configuration)
    }()

    /// A fixed-offset zone where it is now early afternoon, so quiet hours allow sending
    /// whenever the test runs (Etc/GMT-N is UTC+N).
    static func zoneInsideWindow(now: Date = Date()) -> String {
        zone(atLocalHour: 13, now: now)
    }

    /// A fixed-offset zone where it is now about 03:00.
    static func zoneOutsideWindow(now: Date = Date()) -> String {
        zone(atLocalHour: 3, now: now)
    }

    static func zone(atLocalHour hour: Int, now: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let utcHour = calendar.component(.hour, from: now)
        var offset = hour - utcHour
        if offset > 12 { offset -= 24 }
        if offset < -12 { offset += 24 }
        if offset == 0 { return "Etc/GMT" }
        return offset > 0 ? "Etc/GMT-\(offset)" : "Etc/GMT+\(-offset)"
    }

    /// - Parameters:
    ///   - numberCount: sender numbers in the campaign pool.
    ///   - mps, dailyCap: each number's limits (high values switch rate limiting off in effect).
    ///   - settings: the mock connection's settings (ledger_path is added).
    static func make(
        numberCount: Int = 4, mps: Double = 9999, dailyCap: Int = 1_000_000, settings: [String: String] = [:],
        campaignStatus: String = "running"
    ) async throws -> DispatchFixture {
        let env = try await IdentityEnvironment.get()
        let (created, email, password) = try await env.makeOrg(name: "Dispatch \(UUID().uuidString.prefix(6))")
        let org = created.orgID
        let directory = FileManager.default.temporaryDirectory.path + "/ctower-dispatch-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ledgerPath = directory + "/ledger"
        var all = ["seed": "7", "status_events": "false"].merging(settings) { _, new in new }
        all["ledger_path"] = ledgerPath
        let connectionID = UUID()
        let campaignID = UUID()
        let sealed = try CarrierConnectionRecords.seal(
            ["api_key": "mock-key"], box: env.keys.sealedBox, orgID: org.description, connectionID: connectionID.uuidString.lowercased())
        let numbers = (0..<numberCount).map { _ in (id: UUID(), phone: "+1737" + String(Int.random(in: 2_000_000...9_999_999))) }
        try await env.store.withTransaction(tenant: org) { tx in
            try await tx.execute(
                """
                INSERT INTO carrier_connections (id, org_id, provider, name, credentials_encrypted, credentials_key_id, settings)
                VALUES (\(connectionID), \(org), 'mock', 'Mock', \(sealed), 'master', \(CarrierConnectionRecords.json(all))::jsonb)
                """)
            try await tx.execute(
                """
                INSERT INTO phone_numbers (id, org_id, carrier_connection_id, phone, state, messages_per_second, daily_cap)
                SELECT v.id, \(org), \(connectionID), v.phone, 'active', \(mps), \(dailyCap)
                FROM unnest(\(numbers.map(\.id)), \(numbers.map(\.phone))::text[]) AS v(id, phone)
                """)
            try await tx.execute(
                """
                INSERT INTO campaigns (id, org_id, name, kind, status, started_at)
                VALUES (\(campaignID), \(org), 'Broadcast', 'broadcast', \(campaignStatus), now())
                """)
            try await tx.execute(
                """
                INSERT INTO campaign_numbers (org_id, campaign_id, phone_number_id)
                SELECT \(org), \(campaignID), unnest(\(numbers.map(\.id)))
                """)
        }
        return DispatchFixture(
            env: env, org: org, connectionID: connectionID, campaignID: campaignID, numbers: numbers, ledgerPath: ledgerPath,
            directory: directory, ownerEmail: email, ownerPassword: password)
    }

    /// The recipient phone of message `index` when `phones` distinct recipients share the load.
    static func recipient(_ index: Int, phones: Int) -> String { "+1212" + String(5_550_000 + index % phones) }

    /// Queues `count` campaign messages (ids returned) to `phones` recipients, due now, in the
    /// campaign, with recipient zones where sending is allowed now; then NOTIFYs the dispatcher.
    @discardableResult
    func queue(_ count: Int, phones: Int, zones: [String] = [DispatchFixture.zoneInsideWindow()], states: [String] = []) async throws
        -> Int
    {
        try await env.store.withTransaction(tenant: org) { tx in
            let inserted = try await tx.execute(
                """
                INSERT INTO messages (id, org_id, campaign_id, direction, to_phone, body, status, send_after, idempotency_key, purpose,
                                      segments, encoding, recipient_zones, recipient_states)
                SELECT g.id, \(org), \(campaignID), 'outbound', '+1212' || (5550000 + g.i % \(phones))::text, 'Hello from the test, ' || g.i,
                       'queued', now(), g.id::text, 'campaign', 1, 'gsm7', \(zones)::text[], \(states)::text[]
                FROM (SELECT gen_random_uuid() AS id, i FROM generate_series(0, \(count) - 1) i) g
                """)
            try await tx.notify(channel: Dispatcher.channel)
            return inserted
        }
    }

    /// Message counts by status.
    func statusCounts() async throws -> [String: Int] {
        try await env.store.withTransaction(tenant: org, readOnly: true) { tx in
            var counts: [String: Int] = [:]
            for row in try await tx.query("SELECT status, count(*) AS n FROM messages WHERE direction = 'outbound' GROUP BY status") {
                counts[try row.decode("status")] = try row.decode("n")
            }
            return counts
        }
    }

    /// Outbound messages not yet in a final state.
    func unfinished() async throws -> Int {
        let counts = try await statusCounts()
        return ["queued", "claimed", "sending"].reduce(0) { $0 + (counts[$1] ?? 0) }
    }

    struct LedgerLine: Sendable, Hashable {
        var key: String
        var from: String
        var to: String
        var providerID: String
    }

    func ledger() -> [LedgerLine] {
        guard let text = try? String(contentsOfFile: ledgerPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return f.count == 4 ? LedgerLine(key: f[0], from: f[1], to: f[2], providerID: f[3]) : nil
        }
    }

    struct SentRow: Sendable {
        var key: String
        var status: String
        var fromPhone: String?
        var providerID: String?
    }

    func messages() async throws -> [SentRow] {
        try await env.store.withTransaction(tenant: org, readOnly: true) { tx in
            try await tx.query(
                "SELECT idempotency_key, status, from_phone, provider_message_id FROM messages WHERE direction = 'outbound'"
            ).map {
                SentRow(
                    key: try $0.decode("idempotency_key"), status: try $0.decode("status"), fromPhone: try $0.decode("from_phone"),
                    providerID: try $0.decode("provider_message_id"))
            }
        }
    }

    /// The exactly-once verdict of a crash test: keys the carrier got more than once, rows it
    /// never got, and rows whose status, provider id or sender differ from the carrier's record.
    static func compare(ledger: [LedgerLine], rows: [SentRow]) -> (
        duplicated: [String: Int], lost: [SentRow], disagreeing: [SentRow]
    ) {
        var timesSent: [String: Int] = [:]
        for line in ledger { timesSent[line.key, default: 0] += 1 }
        let byKey = Dictionary(ledger.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        let disagreeing = rows.filter { row in
            guard let line = byKey[row.key] else { return false }
            return row.status != "sent" || row.providerID != line.providerID || row.fromPhone != line.from
        }
        return (timesSent.filter { $0.value > 1 }, rows.filter { timesSent[$0.key] == nil }, disagreeing)
    }

    /// Polls until `condition` holds or `timeout` passes.
    static func waitUntil(timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }
}
