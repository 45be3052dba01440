/// What an inbound message asks for, as far as compliance is concerned.
public enum InboundIntent: Sendable, Hashable {
    /// A whole-message opt-out keyword (STOP, ALTO, "NO MÁS", …): suppress the phone org-wide now.
    case optOut(keyword: String)
    /// START, UNSTOP, YES, ALTA, REANUDAR: the sender opts back in.
    case resubscribe(keyword: String)
    /// HELP, INFO, AYUDA: answer with brand, frequency, rates and how to stop.
    case help(keyword: String)
    /// Free text a reasonable person would read as revoking consent ("please stop texting me").
    /// FCC 24-18 makes it binding: treated as an opt-out and flagged for a human to review.
    case revocation(phrase: String)
    /// Anything else: a conversation message.
    case message
}

/// Classifies inbound text: whole-message keywords first (case, accents, punctuation and extra
/// spaces ignored), then phrases that revoke consent in English or Spanish.
public enum KeywordClassifier {
    static let optOut: Set<String> = [
        "stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "opt out", "opt-out",
        "alto", "parar", "pare", "basta", "cancelar", "no mas", "baja",
    ]
    static let resubscribe: Set<String> = ["start", "unstop", "yes", "alta", "reanudar"]
    static let help: Set<String> = ["help", "info", "ayuda"]

    /// Phrases that revoke consent wherever they appear in a message (normalized form).
    static let revocationPhrases: [String] = [
        "stop texting", "stop messaging", "stop sending", "stop contacting", "stop calling", "stop txting",
        "remove me", "remove my number", "take me off", "unsubscribe me", "opt me out", "do not text", "dont text",
        "do not contact", "dont contact", "dont message", "do not message", "no more texts", "no more messages",
        "leave me alone", "lose my number", "delete my number", "wrong number", "not interested stop",
        "no me escriba", "no me escriban", "no me manden", "no me envie", "no me envien", "no me contacte",
        "quitenme", "quiteme", "borren mi numero", "borrar mi numero", "no mas mensajes", "dejen de escribir",
        "dejenme en paz", "numero equivocado",
    ]

    /// Words that, as a message's only meaningful words alongside politeness, still mean stop
    /// ("STOP PLEASE", "please stop!!", "Stop. Thanks").
    static let politeness: Set<String> = ["please", "pls", "plz", "now", "thanks", "thank you", "thx", "por favor", "gracias", "ya"]

    public static func classify(_ text: String) -> InboundIntent {
        let normalized = normalize(text)
        if normalized.isEmpty { return .message }
        if optOut.contains(normalized) { return .optOut(keyword: normalized.uppercased()) }
        if resubscribe.contains(normalized) { return .resubscribe(keyword: normalized.uppercased()) }
        if help.contains(normalized) { return .help(keyword: normalized.uppercased()) }
        // "stop please" / "por favor alto": an opt-out keyword with only politeness around it.
        var rest = " " + normalized + " "
        for word in politeness.sorted(by: { $0.count > $1.count }) { rest = rest.replacingOccurrences(of: " \(word) ", with: " ") }
        let core = rest.trimmed(" ")
        if optOut.contains(core) { return .revocation(phrase: normalized) }
        let padded = " " + normalized + " "
        for phrase in revocationPhrases where padded.contains(" " + phrase + " ") {
            return .revocation(phrase: phrase)
        }
        return .message
    }

    /// Lowercase, diacritics folded (á -> a, ñ -> n), apostrophes dropped (don't -> dont), other
    /// punctuation turned into spaces, runs of spaces collapsed.
    static func normalize(_ text: String) -> String {
        var out = ""
        var lastWasSpace = true
        for scalar in text.lowercased().unicodeScalars {
            let folded = fold(scalar)
            if folded == "'" || folded == "\u{2019}" { continue }
            if folded.properties.isAlphabetic || ("0"..."9").contains(folded) {
                out.unicodeScalars.append(folded)
                lastWasSpace = false
            } else if folded == "-" && !lastWasSpace {
                out.unicodeScalars.append(folded)
            } else if !lastWasSpace {
                out.append(" ")
                lastWasSpace = true
            }
        }
        return out.trimmed(" ").replacingOccurrences(of: "- ", with: " ")
    }

    static func fold(_ s: Unicode.Scalar) -> Unicode.Scalar {
        switch s {
        case "á", "à", "â", "ä", "ã", "å": "a"
        case "é", "è", "ê", "ë": "e"
        case "í", "ì", "î", "ï": "i"
        case "ó", "ò", "ô", "ö", "õ": "o"
        case "ú", "ù", "û", "ü": "u"
        case "ñ": "n"
        case "ç": "c"
        case "ý", "ÿ": "y"
        default: s
        }
    }
}
