import Foundation
import Logging
import Synchronization
import TowerStore

/// Carrier housekeeping that no request triggers, run every `interval` for the orgs with
/// something due (`ctower_carrier_upkeep_orgs`), each in its own tenant transaction:
/// - parked delivery statuses whose send is recorded by now are applied (those whose parking
///   raced the send's record), and those past their expiry are deleted with an audit event
///   (`carrier.status_expired`, with the count) and a log line;
/// - warming numbers whose ramp has reached their daily cap become active (`phone_number.warmed`).
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
    }

    let store: Store
    let configuration: Configuration
    let logger: Logger
    private let task = Mutex<Task<Void, Never>?>(nil)

    public init(store: Store, configuration: Configuration, logger: Logger = Logger(label: "ctower.carrier-upkeep")) {
        self.store = store
        self.configuration = configuration
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
            let pass = try await store.withTransaction(tenant: org) { tx in
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
            if pass.expiredStatuses > 0 || pass.appliedStatuses > 0 || pass.warmedNumbers > 0 {
                logger.notice(
                    "carrier upkeep",
                    metadata: [
                        "org": "\(org)", "applied_parked_statuses": "\(pass.appliedStatuses)",
                        "expired_parked_statuses": "\(pass.expiredStatuses)", "warmed_numbers": "\(pass.warmedNumbers)",
                    ])
            }
            total.appliedStatuses += pass.appliedStatuses
            total.expiredStatuses += pass.expiredStatuses
            total.warmedNumbers += pass.warmedNumbers
        }
        return total
    }
}
