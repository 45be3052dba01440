import TowerProto

/// Twilio's `price` and `price_unit` on a Message resource. Twilio states a charge as a negative
/// decimal string ("-0.00790") and leaves `price` null until it has priced the message, which is
/// often only after delivery.
public enum TwilioPrice {
    /// The price in millionths of the unit (positive), or nil when Twilio has not priced the
    /// message or the fields do not parse. Digits past the sixth decimal place are dropped.
    public static func parse(price: String?, unit: String?) -> Carrier_Price? {
        guard var text = price.map({ String($0.filter { !$0.isWhitespace }) }), !text.isEmpty,
            let unit = unit?.uppercased(), unit.count == 3, unit.allSatisfy({ $0.isASCII && $0.isLetter })
        else { return nil }
        if text.hasPrefix("-") || text.hasPrefix("+") { text.removeFirst() }
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0].isEmpty ? "0" : String(parts[0])
        let fraction = parts.count > 1 ? String(parts[1].prefix(6)) : ""
        guard whole.allSatisfy(\.isASCII), whole.allSatisfy(\.isNumber), fraction.allSatisfy({ $0.isASCII && $0.isNumber }),
            whole.count <= 12, let units = Int64(whole),
            let millionths = Int64(fraction + String(repeating: "0", count: 6 - fraction.count))
        else { return nil }
        var result = Carrier_Price()
        result.amountMicros = units * 1_000_000 + millionths
        result.currency = unit
        return result
    }
}
