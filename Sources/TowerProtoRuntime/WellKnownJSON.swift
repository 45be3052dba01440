/// The JSON forms of google.protobuf's Timestamp, Duration and FieldMask (proto3 JSON mapping),
/// without Foundation.
public enum WellKnownJSON {
    /// Seconds in [0001-01-01T00:00:00Z, 9999-12-31T23:59:59Z], the range proto3 JSON allows.
    static let minTimestampSeconds: Int64 = -62_135_596_800
    static let maxTimestampSeconds: Int64 = 253_402_300_799

    /// RFC 3339 in UTC with "Z", and 0, 3, 6 or 9 fractional digits.
    public static func formatTimestamp(seconds: Int64, nanos: Int32) -> String {
        let days = floorDiv(seconds, 86_400)
        let secOfDay = seconds - days * 86_400
        let (y, m, d) = civilFromDays(days)
        let hh = secOfDay / 3600, mm = (secOfDay % 3600) / 60, ss = secOfDay % 60
        return pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2) + "T" + pad(hh, 2) + ":" + pad(mm, 2) + ":" + pad(ss, 2)
            + fraction(nanos) + "Z"
    }

    public static func parseTimestamp(_ text: String) throws(ProtoDecodingError) -> (Int64, Int32) {
        let bad = ProtoDecodingError(message: "google.protobuf.Timestamp: expected RFC 3339 text such as 2026-11-26T09:15:00Z")
        let b = Array(text.utf8)
        guard b.count >= 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
            b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
            let y = digits(b, 0, 4), let mo = digits(b, 5, 2), let d = digits(b, 8, 2),
            let h = digits(b, 11, 2), let mi = digits(b, 14, 2), let s = digits(b, 17, 2),
            (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 60
        else { throw bad }
        var i = 19
        var nanos: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var count = 0
            while i < b.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[i]) {
                if count < 9 { nanos = nanos * 10 + Int64(b[i] - UInt8(ascii: "0")) }
                count += 1
                i += 1
            }
            guard count > 0, count <= 9 else { throw bad }
            for _ in count..<9 { nanos *= 10 }
        }
        guard i < b.count else { throw bad }
        var offset: Int64 = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard i + 6 == b.count, b[i + 3] == UInt8(ascii: ":"), let oh = digits(b, i + 1, 2), let om = digits(b, i + 4, 2) else {
                throw bad
            }
            offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
            i += 6
        }
        guard i == b.count else { throw bad }
        let seconds = daysFromCivil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset
        guard seconds >= minTimestampSeconds, seconds <= maxTimestampSeconds else {
            throw ProtoDecodingError(message: "google.protobuf.Timestamp: outside 0001-01-01 to 9999-12-31")
        }
        return (seconds, Int32(nanos))
    }

    /// "1.5s", "-0.000001s": seconds with 0, 3, 6 or 9 fractional digits.
    public static func formatDuration(seconds: Int64, nanos: Int32) -> String {
        let negative = seconds < 0 || nanos < 0
        let s = seconds.magnitude
        let n = Int32(truncatingIfNeeded: Int64(nanos).magnitude)
        return (negative ? "-" : "") + String(s) + fraction(n) + "s"
    }

    public static func parseDuration(_ text: String) throws(ProtoDecodingError) -> (Int64, Int32) {
        let bad = ProtoDecodingError(message: "google.protobuf.Duration: expected seconds with an \"s\" suffix, such as 1.5s")
        guard text.hasSuffix("s") else { throw bad }
        var body = Substring(text.dropLast())
        let negative = body.hasPrefix("-")
        if negative { body = body.dropFirst() }
        let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, whole.allSatisfy(\.isNumber), let s = Int64(whole), s <= 315_576_000_000 else {
            throw bad
        }
        var nanos: Int64 = 0
        if parts.count == 2 {
            let frac = parts[1]
            guard !frac.isEmpty, frac.count <= 9, frac.allSatisfy(\.isNumber), let f = Int64(frac) else { throw bad }
            nanos = f
            for _ in frac.count..<9 { nanos *= 10 }
        }
        return negative ? (-s, Int32(-nanos)) : (s, Int32(nanos))
    }

    /// Paths become lowerCamelCase joined by commas: ["user.display_name"] -> "user.displayName".
    public static func formatFieldMask(_ paths: [String]) -> String {
        paths.map { path in
            path.split(separator: ".").map { segment -> String in
                var out = ""
                var upper = false
                for ch in segment {
                    if ch == "_" { upper = true; continue }
                    out += upper ? ch.uppercased() : String(ch)
                    upper = false
                }
                return out
            }.joined(separator: ".")
        }.joined(separator: ",")
    }

    public static func parseFieldMask(_ text: String) throws(ProtoDecodingError) -> [String] {
        if text.isEmpty { return [] }
        return text.split(separator: ",").map { path in
            var out = ""
            for ch in path {
                if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) }
            }
            return out
        }
    }

    // MARK: calendar (proleptic Gregorian, after Howard Hinnant's public-domain algorithms)

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    static func civilFromDays(_ z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func digits(_ b: [UInt8], _ start: Int, _ count: Int) -> Int64? {
        guard start + count <= b.count else { return nil }
        var v: Int64 = 0
        for i in start..<start + count {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[i]) else { return nil }
            v = v * 10 + Int64(b[i] - UInt8(ascii: "0"))
        }
        return v
    }

    static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    static func fraction(_ nanos: Int32) -> String {
        if nanos == 0 { return "" }
        if nanos % 1_000_000 == 0 { return "." + pad(Int64(nanos / 1_000_000), 3) }
        if nanos % 1_000 == 0 { return "." + pad(Int64(nanos / 1_000), 6) }
        return "." + pad(Int64(nanos), 9)
    }
}
