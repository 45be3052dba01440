/// The `grpc-timeout` header: at most 8 ASCII digits followed by one unit of `H M S m u n`.
enum GRPCTimeout {
    /// Returns nil for a malformed value.
    static func parse(_ text: String) -> Duration? {
        let utf8 = text.utf8
        guard utf8.count >= 2, utf8.count <= 9, let unit = utf8.last else { return nil }
        var amount: Int64 = 0
        for byte in utf8.dropLast() {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            amount = amount * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        switch unit {
        case UInt8(ascii: "H"): return .seconds(amount * 3600)
        case UInt8(ascii: "M"): return .seconds(amount * 60)
        case UInt8(ascii: "S"): return .seconds(amount)
        case UInt8(ascii: "m"): return .milliseconds(amount)
        case UInt8(ascii: "u"): return .microseconds(amount)
        case UInt8(ascii: "n"): return .nanoseconds(amount)
        default: return nil
        }
    }

    /// The shortest faithful encoding; rounds up so a deadline is never shortened. Negative
    /// durations become `0n` (already expired).
    static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return "0n" }
        let nanos = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let totalNanos: Int64 =
            nanos.overflow
            ? Int64.max : nanos.partialValue.addingReportingOverflow((attoseconds + 999_999_999) / 1_000_000_000).partialValue
        let units: [(divisor: Int64, suffix: String)] = [
            (1, "n"), (1_000, "u"), (1_000_000, "m"), (1_000_000_000, "S"), (60_000_000_000, "M"), (3_600_000_000_000, "H"),
        ]
        for (divisor, suffix) in units {
            let value = (totalNanos + divisor - 1) / divisor
            if value < 100_000_000 { return "\(value)\(suffix)" }
        }
        return "99999999H"
    }
}
