/// How an SMS body travels and what it costs: GSM-7 (160 characters, 153 per part when split) or
/// UCS-2 (70, 67 per part) as soon as one character is outside GSM-7. Spanish é ñ ü ¿ ¡ are GSM-7;
/// á í ó ú are not, and one of them can triple the cost of a message.
public struct MessageEncoding: Sendable, Hashable {
    public enum Charset: String, Sendable, Hashable { case gsm7 = "GSM-7", ucs2 = "UCS-2" }

    public let charset: Charset
    /// Code units on the wire: GSM-7 septets (extension characters count 2) or UTF-16 units.
    public let units: Int
    public let segments: Int
    /// The characters that forced UCS-2, in order of first appearance (empty for GSM-7).
    public let nonGSMCharacters: [Character]

    /// Units per segment at this length: 160 or 153 for GSM-7, 70 or 67 for UCS-2.
    public var unitsPerSegment: Int {
        switch charset {
        case .gsm7: segments > 1 ? 153 : 160
        case .ucs2: segments > 1 ? 67 : 70
        }
    }

    public init(_ text: String) {
        var septets = 0
        var nonGSM: [Character] = []
        for ch in text {
            if let cost = GSM7.cost(of: ch) {
                septets += cost
            } else if !nonGSM.contains(ch) {
                nonGSM.append(ch)
            }
        }
        if nonGSM.isEmpty {
            charset = .gsm7
            units = septets
            segments = units == 0 ? 0 : (units <= 160 ? 1 : Self.parts(units, perPart: 153, extensionAware: text))
        } else {
            charset = .ucs2
            units = text.utf16.count
            segments = units <= 70 ? 1 : (units + 66) / 67
        }
        nonGSMCharacters = nonGSM
    }

    /// GSM-7 parts of 153 septets; an escape pair (ESC + char) is never split across parts.
    static func parts(_ total: Int, perPart: Int, extensionAware text: String) -> Int {
        var parts = 1
        var used = 0
        for ch in text {
            let cost = GSM7.cost(of: ch) ?? 1
            if used + cost > perPart {
                parts += 1
                used = 0
            }
            used += cost
        }
        return parts
    }
}

/// The GSM 03.38 default alphabet and its extension table (each extension character costs an
/// escape plus itself).
enum GSM7 {
    static let basic: Set<Character> = Set(
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    )
    static let extended: Set<Character> = Set("^{}\\[~]|€\u{0C}")

    static func cost(of ch: Character) -> Int? {
        if basic.contains(ch) { return 1 }
        if extended.contains(ch) { return 2 }
        return nil
    }
}
