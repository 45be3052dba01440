import TowerProto
import TowerStore

/// SQL and row mapping for `phone_numbers`.
enum NumberRecords {
    /// Today as the dispatcher counts days (UTC), for the warming ramp.
    static let today = "(now() AT TIME ZONE 'UTC')::date"

    static let columns = """
        n.id::text AS id, n.carrier_connection_id::text AS connection_id, n.phone, n.kind, n.state,
        coalesce(n.area_code, '') AS area_code, coalesce(n.provider_number_id, '') AS provider_number_id,
        n.messages_per_second::float8 AS mps, n.daily_cap,
        CASE WHEN n.state = 'warming' THEN ctower_warming_day(n.warming_started_on, \(today)) ELSE 0 END AS warming_day,
        ctower_effective_daily_cap(n.state, n.daily_cap, n.warming_started_on, \(today)) AS effective_daily_cap,
        n.health_score::int4 AS health_score, coalesce(n.quarantine_reason, '') AS quarantine_reason,
        \(Timestamps.micros("n.quarantined_at")) AS quarantined_us, \(Timestamps.micros("n.acquired_at")) AS acquired_us,
        \(Timestamps.micros("n.released_at")) AS released_us
        """

    static func number(_ row: Row) throws -> PhoneNumber {
        var n = PhoneNumber()
        n.id = try row.decode("id", as: String.self)
        n.carrierConnectionID = try row.decode("connection_id", as: String.self)
        n.phone = try row.decode("phone", as: String.self)
        n.kind = kind(try row.decode("kind", as: String.self))
        n.state = state(try row.decode("state", as: String.self))
        n.areaCode = try row.decode("area_code", as: String.self)
        n.providerNumberID = try row.decode("provider_number_id", as: String.self)
        n.messagesPerSecond = try row.decode("mps", as: Double.self)
        n.dailyCap = try row.decode("daily_cap", as: Int32.self)
        n.warmingDay = try row.decode("warming_day", as: Int32.self)
        n.effectiveDailyCap = try row.decode("effective_daily_cap", as: Int32.self)
        n.healthScore = try row.decode("health_score", as: Int32.self)
        n.quarantineReason = try row.decode("quarantine_reason", as: String.self)
        n.quarantineTime = Timestamps.proto(micros: try row.decode("quarantined_us", as: Int64?.self))
        n.acquireTime = Timestamps.proto(micros: try row.decode("acquired_us", as: Int64?.self))
        n.releaseTime = Timestamps.proto(micros: try row.decode("released_us", as: Int64?.self))
        return n
    }

    static func kind(_ text: String) -> PhoneNumberKind {
        switch text {
        case "long_code": .longCode
        case "toll_free": .tollFree
        case "short_code": .shortCode
        default: .unspecified
        }
    }

    static func databaseName(_ kind: PhoneNumberKind) -> String? {
        switch kind {
        case .unspecified, .longCode: "long_code"
        case .tollFree: "toll_free"
        case .shortCode: "short_code"
        default: nil
        }
    }

    static func state(_ text: String) -> PhoneNumberState {
        switch text {
        case "warming": .warming
        case "active": .active
        case "quarantined": .quarantined
        case "released": .released
        default: .unspecified
        }
    }

    static func databaseName(_ state: PhoneNumberState) -> String? {
        switch state {
        case .warming: "warming"
        case .active: "active"
        case .quarantined: "quarantined"
        case .released: "released"
        default: nil
        }
    }

    /// The carrier's throughput for a kind of number (segments per second), the default rate.
    static func defaultMessagesPerSecond(_ kind: String) -> Double {
        switch kind {
        case "toll_free": 3
        case "short_code": 100
        default: 1
        }
    }

    static let maxMessagesPerSecond = 1000.0
    static let maxDailyCap = 1_000_000

    static func validRate(_ value: Double) -> Bool { value > 0 && value <= maxMessagesPerSecond && value.isFinite }
    static func validDailyCap(_ value: Int32) -> Bool { value >= 1 && value <= maxDailyCap }
}
