import Foundation

/// A sending number as the planner sees it during one claim: its pacing slot and today's count,
/// both read under the number's row lock and written back in the same transaction.
struct SenderNumber: Sendable, Hashable {
    var id: UUID
    var phone: String
    var connectionID: UUID
    var messagesPerSecond: Double
    var dailyCap: Int
    /// The earliest moment the number may send its next message.
    var nextSlot: Date
    var usedToday: Int
}

/// The sender chosen for one message.
enum SenderChoice: Sendable, Hashable {
    /// Send from `number` at `slot` (not before).
    case assigned(number: UUID, slot: Date)
    /// Every eligible number is busy beyond the horizon or at its daily cap: try again then.
    case deferred(until: Date)
    /// No number can ever send it (empty pool, preset number gone).
    case skip(reason: String)
}

/// Chooses senders for a batch: a preset number wins; else the number that last messaged the
/// lead (sticky) if it is in the pool, under its daily cap and free soon; else the least-loaded
/// number of the pool (earliest free slot, then fewest messages today). Each choice reserves a
/// slot 1/MPS after the previous one on that number, so pacing holds across dispatchers that
/// share the database. Pure logic over the numbers read for the batch.
struct SenderPlanner: Sendable {
    private(set) var numbers: [UUID: SenderNumber]
    /// How far ahead a slot may be reserved; later work goes back to the queue.
    let horizon: TimeInterval
    /// Numbers whose slot or count changed, to write back.
    private(set) var touched: Set<UUID> = []
    /// Reservations per number, for the daily usage counter.
    private(set) var reservations: [UUID: Int] = [:]
    /// Where deferred messages would fall if the numbers kept their pace: successive deferrals
    /// get successive times, so the queue comes back at the pool's rate instead of all at once.
    /// Never written back; only real reservations move a number's slot.
    private var projected: [UUID: Date] = [:]

    init(numbers: [SenderNumber], horizon: TimeInterval) {
        self.numbers = Dictionary(numbers.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.horizon = horizon
    }

    /// - Parameters:
    ///   - pool: the campaign's numbers (or the org's, for messages without a campaign).
    ///   - campaignMPS, campaignDailyCap: the campaign's per-number limits, when it sets them.
    ///   - nextDay: when daily caps reset.
    mutating func choose(
        preset: UUID?, pool: [UUID], sticky: UUID?, campaignMPS: Double?, campaignDailyCap: Int?, now: Date, nextDay: Date
    ) -> SenderChoice {
        let candidates: [UUID]
        if let preset {
            guard numbers[preset] != nil else { return .skip(reason: "sender_unavailable") }
            candidates = [preset]
        } else {
            candidates = pool.filter { numbers[$0] != nil }
            if candidates.isEmpty { return .skip(reason: "no_sender") }
        }
        func cap(_ number: SenderNumber) -> Int { min(number.dailyCap, campaignDailyCap ?? .max) }
        let eligible = candidates.compactMap { numbers[$0] }.filter { $0.usedToday < cap($0) }
        guard !eligible.isEmpty else { return .deferred(until: nextDay) }
        let limit = now.addingTimeInterval(horizon)
        func slot(_ number: SenderNumber) -> Date { max(number.nextSlot, now) }
        var chosen: SenderNumber?
        if let sticky, let number = eligible.first(where: { $0.id == sticky }), slot(number) <= limit {
            chosen = number
        } else {
            chosen = eligible.min { a, b in
                if slot(a) != slot(b) { return slot(a) < slot(b) }
                if a.usedToday != b.usedToday { return a.usedToday < b.usedToday }
                return a.id.uuidString < b.id.uuidString
            }
        }
        guard var number = chosen else { return .deferred(until: nextDay) }
        let mps = min(number.messagesPerSecond, campaignMPS ?? .infinity)
        let at = slot(number)
        guard at <= limit else {
            func projection(_ n: SenderNumber) -> Date { max(projected[n.id] ?? slot(n), slot(n)) }
            let later = eligible.min { projection($0) < projection($1) } ?? number
            let until = projection(later)
            projected[later.id] = until.addingTimeInterval(1 / max(min(later.messagesPerSecond, campaignMPS ?? .infinity), 0.001))
            return .deferred(until: until)
        }
        number.nextSlot = at.addingTimeInterval(1 / max(mps, 0.001))
        number.usedToday += 1
        numbers[number.id] = number
        touched.insert(number.id)
        reservations[number.id, default: 0] += 1
        return .assigned(number: number.id, slot: at)
    }
}
