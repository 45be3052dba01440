import Foundation
import Logging
import Synchronization
import TowerCarrierHost
import TowerCrypto
import TowerStore

/// Sends the queued outbound messages of every org: claims due rows in batches (`FOR UPDATE SKIP
/// LOCKED`), passes them through the compliance gate, picks a sender under its rate limits, and
/// hands them to the carrier plugin with the message's idempotency key.
///
/// Several dispatcher processes may share one database: claims are row locks, pacing and daily
/// caps live in `phone_numbers.next_send_at` and `phone_number_daily_usage` under row locks, and
/// a dispatcher that dies (kill -9) leaves claims that another recovers once their lease runs
/// out — those already handed to the carrier are resolved with QueryStatus before any resend.
///
/// It sleeps on `LISTEN ctower_dispatch` and a timer set to the next `send_after`; it never polls
/// in a busy loop.
public final class Dispatcher: Sendable {
    public struct Configuration: Sendable {
        /// Written to `messages.claimed_by`; unique per process.
        public var instanceID: String
        /// Messages claimed per transaction.
        public var batchSize = 500
        /// Batches in progress at once (they overlap database round trips with carrier sends).
        public var workers = 4
        /// A claim older than this belongs to a dead dispatcher and is recovered. Must exceed
        /// `reservationHorizon` + `sendTimeout` by a margin.
        public var claimLease: Duration = .seconds(60)
        /// How long one Send may take; the plugin cancels it after that.
        public var sendTimeout: Duration = .seconds(20)
        /// How far ahead a number's send slot may be reserved; later work goes back to the queue.
        public var reservationHorizon: Duration = .seconds(2)
        /// Longest sleep without a notification (also the stale-claim sweep's period ceiling).
        public var idleWake: Duration = .seconds(10)
        /// Attempts before a message that keeps failing transiently is marked failed.
        public var maxAttempts = 8
        /// The clock quiet hours are judged by; shifted only by `ctower demo`.
        public var complianceClock = ComplianceClock.real
        /// Dispatch only these orgs (a dispatcher pinned to large tenants, or a test sharing its
        /// database with other tests); nil dispatches every org.
        public var orgs: Set<OrgID>?

        public init(instanceID: String = Dispatcher.defaultInstanceID()) {
            self.instanceID = instanceID
        }
    }

    /// `dispatch-HOST-PID-RANDOM`.
    public static func defaultInstanceID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        return "dispatch-\(host)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    public static let channel = "ctower_dispatch"

    let store: Store
    let box: SealedBox
    let registry: CarrierRegistry
    let configuration: Configuration
    let logger: Logger
    let wake = WakeSignal()
    private let loop = Mutex<[Task<Void, Never>]>([])
    private let connections = Mutex<[UUID: CachedConnection]>([:])
    private let limiters = Mutex<[String: AsyncSemaphore]>([:])
    /// When each org's carrier plugins were last made ready (see `warmCarriers`).
    private let warmed = Mutex<[OrgID: ContinuousClock.Instant]>([:])
    /// How long a claim's tail took lately (from locking its numbers to commit, seconds): the lead
    /// an idle number's first slot gets, so the slot is still ahead when the hand-off starts.
    let claimTail = Mutex<TimeInterval>(0.1)

    struct CachedConnection: Sendable {
        var connection: ResolvedCarrierConnection
        var fetchedAt: ContinuousClock.Instant
    }

    public init(
        store: Store, keys: KeyRing, registry: CarrierRegistry, configuration: Configuration,
        logger: Logger = Logger(label: "ctower.dispatch")
    ) {
        self.store = store
        self.box = keys.sealedBox
        self.registry = registry
        self.configuration = configuration
        self.logger = logger
    }

    /// LISTENs and starts the loop in the background.
    public func start() async throws {
        let listener = try await store.listen(to: [Self.channel])
        let run = Task { await self.run(listener: listener) }
        // The sweep has its own task so a long backlog does not delay recovering a dead peer's claims.
        let sweepEvery = max(min(configuration.claimLease / 2, configuration.idleWake), .milliseconds(200))
        let sweep = Task {
            while !Task.isCancelled {
                await self.recoverStaleClaims()
                try? await Task.sleep(for: sweepEvery)
            }
        }
        loop.withLock { $0 = [run, sweep] }
        logger.info("dispatcher started", metadata: ["instance": "\(configuration.instanceID)"])
    }

    /// Stops claiming and waits for the loop to end. Claims still held are recovered by the next
    /// dispatcher once their lease runs out.
    public func stop() async {
        let tasks = loop.withLock { tasks -> [Task<Void, Never>] in
            defer { tasks = [] }
            return tasks
        }
        for task in tasks { task.cancel() }
        wake.signal()
        for task in tasks { await task.value }
    }

    /// Wakes the loop now (e.g. right after queueing in this process).
    public func poke() { wake.signal() }

    private func run(listener: NotificationListener) async {
        let wake = self.wake
        let notifications = Task {
            for await _ in listener { wake.signal() }
        }
        defer {
            notifications.cancel()
            listener.stop()
        }
        while !Task.isCancelled {
            let orgs: [OrgID]
            do {
                orgs = try await dueOrgs()
            } catch {
                if Task.isCancelled { break }
                logger.error("finding orgs with due messages failed", metadata: ["error": "\(error)"])
                await wake.wait(timeout: .seconds(1))
                continue
            }
            if orgs.isEmpty {
                await wake.wait(timeout: await untilNextDue())
                continue
            }
            let claimed = await drain(orgs)
            // Due rows exist but none could be claimed (another dispatcher holds them): wait
            // for news rather than spin.
            if claimed == 0 { await wake.wait(timeout: .milliseconds(100)) }
        }
    }

    private func dueOrgs() async throws -> [OrgID] {
        // A pinned dispatcher looks at its own orgs; claiming finds nothing where nothing is due.
        if let pinned = configuration.orgs { return pinned.sorted { $0.description < $1.description } }
        return try await store.withTransaction(tenant: nil, readOnly: true) { tx in
            try await tx.query("SELECT ctower_dispatch_due_orgs(64)::text AS org_id").compactMap {
                OrgID(try $0.decode("org_id", as: String.self))
            }
        }
    }

    /// Time until the next queued message falls due, capped by `idleWake`.
    private func untilNextDue() async -> Duration {
        let seconds: Double?? = try? await store.withTransaction(tenant: nil, readOnly: true) { tx in
            try await tx.query("SELECT extract(epoch FROM ctower_dispatch_next_due() - clock_timestamp())::float8 AS s").one().decode(
                "s", as: Double?.self)
        }
        guard case .some(.some(let seconds)) = seconds else { return configuration.idleWake }
        return min(configuration.idleWake, .milliseconds(max(1, Int(seconds * 1000) + 1)))
    }

    /// Works the orgs with `workers` concurrent batch pipelines until each org has no more due
    /// work; several pipelines share an org when there are fewer orgs than workers.
    private func drain(_ orgs: [OrgID]) async -> Int {
        let workers = max(1, configuration.workers)
        let batchSize = configuration.batchSize
        return await withTaskGroup(of: Int.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var total = 0
                    for offset in 0..<orgs.count {
                        let org = orgs[(worker + offset) % orgs.count]
                        while !Task.isCancelled {
                            let claimed = await self.processBatch(org: org)
                            total += claimed
                            if claimed < batchSize { break }
                        }
                    }
                    return total
                }
            }
            var total = 0
            for await count in group { total += count }
            return total
        }
    }

    /// One batch of one org: claim, gate, choose senders, then hand off at each slot. Returns
    /// how many messages were claimed.
    func processBatch(org: OrgID) async -> Int {
        await warmCarriers(org: org)
        let plan: ClaimPlan
        do {
            plan = try await claim(org: org)
        } catch {
            if !Task.isCancelled { logger.error("claiming failed", metadata: ["org": "\(org)", "error": "\(error)"]) }
            return 0
        }
        if !plan.sends.isEmpty { await handOff(plan.sends, org: org) }
        return plan.claimed
    }

    // MARK: Carrier connections

    /// Starts (or checks) the plugins of the org's connections before a claim reserves slots:
    /// a plugin started by the first hand-off made that hand-off late, and the slots it passed
    /// meanwhile went out at once (a burst at the start of every run). At most every 30 s.
    func warmCarriers(org: OrgID) async {
        if let at = warmed.withLock({ $0[org] }), ContinuousClock.now - at < .seconds(30) { return }
        let ids = try? await store.withTransaction(tenant: org, readOnly: true) { tx in
            try await tx.query("SELECT id FROM carrier_connections WHERE status <> 'disabled'").map { try $0.decode("id", as: UUID.self) }
        }
        for id in ids ?? [] { _ = try? await host(for: id, org: org) }
        warmed.withLock { $0[org] = .now }
    }

    /// The lead an idle number's first slot gets after its claim locked it.
    func slotLead() -> TimeInterval {
        min(1, max(0.02, claimTail.withLock { $0 } * 1.5))
    }

    /// Remembers a claim's tail: the longest lately, decaying.
    func recordClaimTail(_ seconds: TimeInterval) {
        claimTail.withLock { $0 = max(seconds, $0 * 0.9) }
    }

    /// The plugin host and configured connection for `connectionID`, resolved (and decrypted)
    /// at most every 30 s so changed credentials reach the plugin.
    func host(for connectionID: UUID, org: OrgID) async throws -> (host: CarrierHost, connection: String, limiter: AsyncSemaphore) {
        let cached = connections.withLock { $0[connectionID] }
        let connection: ResolvedCarrierConnection
        if let cached, ContinuousClock.now - cached.fetchedAt < .seconds(30) {
            connection = cached.connection
        } else {
            let box = box
            guard
                let resolved = try await store.withTransaction(
                    tenant: org, readOnly: true,
                    { tx in
                        try await CarrierConnectionRecords.resolve(tx, id: UUIDText(connectionID.uuidString.lowercased())!, box: box)
                    })
            else { throw CarrierError(.auth, "carrier connection \(connectionID) no longer exists", submissionState: .notSubmitted) }
            connection = resolved
            connections.withLock { $0[connectionID] = CachedConnection(connection: resolved, fetchedAt: .now) }
        }
        let host = try await registry.prepare(connection)
        let carrier = connection.carrier
        if let limiter = limiters.withLock({ $0[carrier] }) { return (host, connection.id, limiter) }
        let permits = await host.pluginInfo?.maxInFlight ?? 16
        let limiter = limiters.withLock { all in
            if let existing = all[carrier] { return existing }
            let created = AsyncSemaphore(permits: permits)
            all[carrier] = created
            return created
        }
        return (host, connection.id, limiter)
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
