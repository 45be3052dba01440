import Foundation
import Logging
import Synchronization
import TowerCarrierHost
import TowerCrypto
import TowerProto
import TowerStore

/// Carrier housekeeping that no request triggers, run every `interval` for the orgs with
/// something due (`ctower_carrier_upkeep_orgs`), each in its own tenant transaction:
/// - parked delivery statuses whose send is recorded by now are applied (those whose parking
///   raced the send's record), and those past their expiry are deleted with an audit event
///   (`carrier.status_expired`, with the count) and a log line;
/// - warming numbers whose ramp has reached their daily cap become active (`phone_number.warmed`);
/// - final messages the carrier has not priced yet (`message_cost_checks`) are looked up with
///   QueryStatus on plugins with CAPABILITY_PRICE_QUERY: 2 minutes, 30 minutes and 6 hours after
///   the final status, then given up.
/// Runs in every process that dispatches.
public final class CarrierUpkeep: Sendable {
    public struct Configuration: Sendable {
        public var interval: Duration = .seconds(30)
        /// Only these orgs (as the dispatcher's `orgs`); nil means every org.
        public var orgs: Set<OrgID>?

        public init() {}
    }

    /// What one pass did.
    public struct Pass: Sendable, Equatable {
        public var appliedStatuses = 0
        public var expiredStatuses = 0
        public var warmedNumbers = 0
        /// Messages whose price was asked for, and how many of them got one.
        public var priceQueries = 0
        public var pricedMessages = 0
    }

    /// When to ask again after the n-th unanswered price query (then give up).
    static let priceRetryDelays: [TimeInterval] = [30 * 60, 6 * 3600]
    /// Price queries per org and pass.
    static let priceBatch = 200

    let store: Store
    let configuration: Configuration
    let carriers: (registry: CarrierRegistry, box: SealedBox)?
    let logger: Logger
    private let task = Mutex<Task<Void, Never>?>(nil)

    /// Without `carriers` no prices are asked for.
    public init(
        store: Store, configuration: Configuration, carriers: (registry: CarrierRegistry, keys: KeyRing)? = nil,
        logger: Logger = Logger(label: "ctower.carrier-upkeep")
    ) {
        self.store = store
        self.configuration = configuration
        self.carriers = carriers.map { ($0.registry, $0.keys.sealedBox) }
        self.logger = logger
    }

    public func start() {
        let interval = configuration.interval
        let loop = Task {
            while !Task.isCancelled {
                do { _ = try await self.runOnce() } catch {
                    if !Task.isCancelled { self.logger.error("carrier upkeep failed", metadata: ["error": "\(error)"]) }
                }
                try? await Task.sleep(for: interval)
            }
        }
        task.withLock { $0 = loop }
    }

    public func stop() async {
        let loop = task.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        loop?.cancel()
        await loop?.value
    }

    /// One pass as of `now` (tests pass a later date to see expiry and the ramp move).
    @discardableResult
    public func runOnce(now: Date = Date()) async throws -> Pass {
        let orgs: [OrgID]
        if let pinned = configuration.orgs {
            orgs = pinned.sorted { $0.description < $1.description }
        } else {
            orgs = try await store.withTransaction(tenant: nil, readOnly: true) { tx in
                try await tx.query("SELECT o::text AS org_id FROM ctower_carrier_upkeep_orgs(\(now), 1000) o").compactMap {
                    OrgID(try $0.decode("org_id", as: String.self))
                }
            }
        }
        var total = Pass()
        for org in orgs {
            guard let orgID = UUIDText(org.description) else { continue }
            var pass = try await store.withTransaction(tenant: org) { tx in
                let swept = try await tx.query(
                    "SELECT applied::int8 AS applied, expired::int8 AS expired FROM ctower_sweep_parked_statuses(\(orgID), \(now))"
                ).one()
                let warmed = try await tx.query(
                    "SELECT ctower_promote_warmed_numbers(\(orgID), (\(now)::timestamptz AT TIME ZONE 'UTC')::date)::int8 AS warmed"
                ).one()
                return Pass(
                    appliedStatuses: Int(try swept.decode("applied", as: Int64.self)),
                    expiredStatuses: Int(try swept.decode("expired", as: Int64.self)),
                    warmedNumbers: Int(try warmed.decode("warmed", as: Int64.self)))
            }
            (pass.priceQueries, pass.pricedMessages) = try await askPrices(org: org, orgID: orgID, now: now)
            if pass.expiredStatuses > 0 || pass.appliedStatuses > 0 || pass.warmedNumbers > 0 || pass.priceQueries > 0 {
                logger.notice(
                    "carrier upkeep",
                    metadata: [
                        "org": "\(org)", "applied_parked_statuses": "\(pass.appliedStatuses)",
                        "expired_parked_statuses": "\(pass.expiredStatuses)", "warmed_numbers": "\(pass.warmedNumbers)",
                        "price_queries": "\(pass.priceQueries)", "priced_messages": "\(pass.pricedMessages)",
                    ])
            }
            total.appliedStatuses += pass.appliedStatuses
            total.expiredStatuses += pass.expiredStatuses
            total.warmedNumbers += pass.warmedNumbers
            total.priceQueries += pass.priceQueries
            total.pricedMessages += pass.pricedMessages
        }
        return total
    }

    struct PriceCheck: Sendable {
        var messageID: UUID
        var connectionID: UUID
        var attempts: Int
        var key: String
        var to: String
        var from: String
        var sentAt: Date?
    }

    /// Asks the carriers for the prices due in `org`; returns (asked, priced). Plugin calls run
    /// outside any transaction.
    func askPrices(org: OrgID, orgID: UUIDText, now: Date) async throws -> (Int, Int) {
        guard let carriers else { return (0, 0) }
        let due = try await store.withTransaction(tenant: org, readOnly: true) { tx in
            try await tx.query(
                """
                SELECT c.message_id, c.carrier_connection_id, c.attempts::int8 AS attempts, m.idempotency_key, m.to_phone::text AS to_phone,
                       COALESCE(m.from_phone::text, '') AS from_phone, m.sent_at
                FROM message_cost_checks c JOIN messages m ON m.id = c.message_id
                WHERE c.org_id = \(orgID) AND c.due_at <= \(now) ORDER BY c.due_at LIMIT \(Self.priceBatch)
                """
            ).map { row in
                PriceCheck(
                    messageID: try row.decode("message_id"), connectionID: try row.decode("carrier_connection_id"),
                    attempts: Int(try row.decode("attempts", as: Int64.self)), key: try row.decode("idempotency_key"),
                    to: try row.decode("to_phone"), from: try row.decode("from_phone"), sentAt: try row.decode("sent_at"))
            }
        }
        guard !due.isEmpty else { return (0, 0) }
        var prices: [UUID: Carrier_Price] = [:]
        var unanswered: [PriceCheck] = []
        var dropped: [UUID] = []
        for (connectionID, checks) in Dictionary(grouping: due, by: \.connectionID) {
            let box = carriers.box
            let connection = try await store.withTransaction(tenant: org, readOnly: true) { tx in
                try await CarrierConnectionRecords.resolve(tx, id: UUIDText(connectionID.uuidString.lowercased())!, box: box)
            }
            guard let connection, let host = try? await carriers.registry.prepare(connection),
                await host.pluginInfo?.capabilities.contains(.priceQuery) == true
            else {
                // A connection gone or a plugin that cannot say: nothing to wait for.
                dropped += checks.map(\.messageID)
                continue
            }
            for check in checks {
                var notBefore = Google_Protobuf_Timestamp()
                notBefore.seconds = Int64((check.sentAt ?? now).timeIntervalSince1970) - 60
                let answer = try? await host.queryStatus(
                    idempotencyKey: check.key, to: check.to, from: check.from, notBefore: notBefore, connection: connection.id,
                    timeout: .seconds(10))
                if let price = answer?.price, CarrierEventRecorder.cost(price) != nil {
                    prices[check.messageID] = price
                } else {
                    unanswered.append(check)
                }
            }
        }
        let retryDelays = Self.priceRetryDelays
        try await store.withTransaction(tenant: org) { tx in
            for (id, price) in prices {
                try await tx.execute(
                    """
                    UPDATE messages SET cost_micros = \(price.amountMicros), currency = \(price.currency)
                    WHERE id = \(id) AND cost_micros IS NULL
                    """)
            }
            let finished = Array(prices.keys) + dropped + unanswered.filter { $0.attempts + 1 > retryDelays.count }.map(\.messageID)
            try await tx.execute("DELETE FROM message_cost_checks WHERE message_id = ANY (\(finished))")
            let again = unanswered.filter { $0.attempts + 1 <= retryDelays.count }
            if !again.isEmpty {
                try await tx.execute(
                    """
                    UPDATE message_cost_checks c SET attempts = c.attempts + 1, due_at = v.due_at
                    FROM unnest(\(again.map(\.messageID)), \(again.map { now.addingTimeInterval(retryDelays[$0.attempts]) })) AS v(id, due_at)
                    WHERE c.message_id = v.id
                    """)
            }
        }
        return (due.count - dropped.count, prices.count)
    }
}
