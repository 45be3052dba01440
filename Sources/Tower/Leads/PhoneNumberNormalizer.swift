/// US (NANP) phone numbers in E.164, with the reason a number is refused.
///
/// Accepts the shapes lead files carry: `(512) 555-2368`, `512.555.2368`, `+1 512 555 2368`,
/// `15125552368`, `512-555-2368 ext 4`. Refuses what cannot receive an SMS from us.
public enum PhoneNumberNormalizer {
    public enum Rejection: String, Error, Sendable, Hashable, CaseIterable {
        case empty = "no digits"
        case wrongLength = "not 10 digits (or 11 starting with 1)"
        case invalidAreaCode = "the area code cannot start with 0 or 1"
        case serviceAreaCode = "N11 codes (211, 311 … 911) are not area codes"
        case invalidExchange = "the exchange (digits 4-6) cannot start with 0 or 1"
        case serviceExchange = "N11 exchanges are service codes"
        case fictional = "555-0100 to 555-0199 are reserved for fiction"
        case tollFreeOrPremium = "toll-free and 900 numbers do not receive texts from us"
    }

    /// Toll-free and premium area codes, as three ASCII digits packed into one integer.
    private static let tollFree: Set<Int> = [800, 833, 844, 855, 866, 877, 888, 900]

    /// `+1NXXNXXXXXX`, or why not.
    ///
    /// One pass over the UTF-8 bytes, no allocation but the result: an import calls this for
    /// every phone cell of every row. Digits are ASCII `0`-`9` only (full-width or other scripts'
    /// digits are not phone digits a carrier accepts).
    public static func normalize(_ raw: String) -> Result<String, Rejection> {
        var raw = raw
        return raw.withUTF8 { normalize(bytes: $0) }
    }

    static func normalize(bytes: UnsafeBufferPointer<UInt8>) -> Result<String, Rejection> {
        // Up to 11 digits are kept; more only count toward the length check.
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte &- 0x30 < 10 {
                if count < 11 { withUnsafeMutableBytes(of: &digits) { $0[count] = byte } }
                count += 1
            } else if count > 0, isExtensionMarker(bytes, at: index) {
                // An extension never belongs to the SMS address.
                break
            }
            index += 1
        }
        if count == 0 { return .failure(.empty) }
        return withUnsafeBytes(of: &digits) { all -> Result<String, Rejection> in
            var start = 0
            if count == 11, all[0] == UInt8(ascii: "1") {
                start = 1
                count = 10
            }
            guard count == 10 else { return .failure(.wrongLength) }
            let d = { (i: Int) -> UInt8 in all[start + i] }
            func number(_ from: Int, _ length: Int) -> Int {
                (from..<from + length).reduce(0) { $0 * 10 + Int(d($1) - 0x30) }
            }
            guard d(0) >= UInt8(ascii: "2") else { return .failure(.invalidAreaCode) }
            if d(1) == UInt8(ascii: "1"), d(2) == UInt8(ascii: "1") { return .failure(.serviceAreaCode) }
            guard d(3) >= UInt8(ascii: "2") else { return .failure(.invalidExchange) }
            if d(4) == UInt8(ascii: "1"), d(5) == UInt8(ascii: "1") { return .failure(.serviceExchange) }
            if number(3, 3) == 555, (100...199).contains(number(6, 4)) { return .failure(.fictional) }
            if tollFree.contains(number(0, 3)) { return .failure(.tollFreeOrPremium) }
            return .success(
                String(unsafeUninitializedCapacity: 12) { out in
                    out[0] = UInt8(ascii: "+")
                    out[1] = UInt8(ascii: "1")
                    for i in 0..<10 { out[2 + i] = d(i) }
                    return 12
                })
        }
    }

    /// `ext`, `x` or `#` (any case) at `index`: what follows is an extension.
    private static func isExtensionMarker(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Bool {
        switch bytes[index] | 0x20 {
        case UInt8(ascii: "x"): return true
        case UInt8(ascii: "#") | 0x20: return bytes[index] == UInt8(ascii: "#")
        case UInt8(ascii: "e"):
            return index + 2 < bytes.count && bytes[index + 1] | 0x20 == UInt8(ascii: "x") && bytes[index + 2] | 0x20 == UInt8(ascii: "t")
        default: return false
        }
    }
}
