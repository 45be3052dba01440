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

    static let tollFree: Set<String> = ["800", "833", "844", "855", "866", "877", "888", "900"]

    /// `+1NXXNXXXXXX`, or why not.
    public static func normalize(_ raw: String) -> Result<String, Rejection> {
        var text = Substring(raw.lowercased())
        // An extension never belongs to the SMS address.
        for marker in ["ext", "x", "#"] {
            if let range = text.range(of: marker), text[..<range.lowerBound].contains(where: \.isNumber) {
                text = text[..<range.lowerBound]
                break
            }
        }
        var digits = text.filter(\.isNumber).map { $0 }
        if digits.isEmpty { return .failure(.empty) }
        if digits.count == 11, digits.first == "1" { digits.removeFirst() }
        guard digits.count == 10 else { return .failure(.wrongLength) }
        let npa = String(digits[0..<3])
        let nxx = String(digits[3..<6])
        let line = String(digits[6..<10])
        guard digits[0] >= "2" else { return .failure(.invalidAreaCode) }
        if digits[1] == "1", digits[2] == "1" { return .failure(.serviceAreaCode) }
        guard digits[3] >= "2" else { return .failure(.invalidExchange) }
        if digits[4] == "1", digits[5] == "1" { return .failure(.serviceExchange) }
        if nxx == "555", let n = Int(line), (100...199).contains(n) { return .failure(.fictional) }
        if tollFree.contains(npa) { return .failure(.tollFreeOrPremium) }
        return .success("+1" + npa + nxx + line)
    }
}
