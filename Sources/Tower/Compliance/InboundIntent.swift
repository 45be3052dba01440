import Foundation

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
    /// A strong opt-out word inside other text ("can you stop by Tuesday?"): not a revocation,
    /// so nothing is suppressed, but a person should read it.
    case possibleRevocation(word: String)
    /// Anything else: a conversation message.
    case message

    /// The stored name of the intent (`messages.intent`).
    public var name: String {
        switch self {
        case .optOut: "opt_out"
        case .resubscribe: "resubscribe"
        case .help: "help"
        case .revocation: "revocation"
        case .possibleRevocation: "possible_revocation"
        case .message: "message"
        }
    }

    /// True when the keyword is Spanish (ALTO, AYUDA, ALTA…): the reply is in Spanish too.
    public var isSpanish: Bool {
        switch self {
        case .optOut(let keyword), .resubscribe(let keyword), .help(let keyword):
            KeywordClassifier.spanishKeywords.contains(keyword.lowercased())
        case .revocation(let phrase):
            KeywordClassifier.spanishPhrases.contains(phrase)
                || phrase.split(separator: " ").contains { KeywordClassifier.spanishKeywords.contains(String($0)) }
        case .possibleRevocation, .message: false
        }
    }
}

/// Classifies inbound text: whole-message keywords first (case, accents, punctuation and extra
/// spaces ignored), then phrases that revoke consent in English or Spanish, then strong opt-out
/// words inside other text (flagged, never acted on).
public enum KeywordClassifier {
    static let optOut: Set<String> = [
        "stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "opt out", "opt-out",
        "alto", "parar", "pare", "basta", "cancelar", "no mas", "baja",
    ]
    static let resubscribe: Set<String> = ["start", "unstop", "yes", "alta", "reanudar"]
    static let help: Set<String> = ["help", "info", "ayuda"]
    static let spanishKeywords: Set<String> = ["alto", "parar", "pare", "basta", "cancelar", "no mas", "baja", "alta", "reanudar", "ayuda"]

    static let englishPhrases: [String] = [
        "stop texting", "stop messaging", "stop sending", "stop contacting", "stop calling", "stop txting",
        "remove me", "remove my number", "remove this number", "take me off", "take my number off", "unsubscribe me",
        "opt me out", "do not text", "dont text", "do not contact", "dont contact", "dont message", "do not message",
        "no more texts", "no more messages", "leave me alone", "lose my number", "delete my number", "wrong number",
        "not interested stop",
    ]
    static let spanishPhrases: [String] = [
        "no me escriba", "no me escriban", "no me escribas", "no me manden", "no me mandes", "no me envie", "no me envien",
        "no me envies", "no me contacte", "quitenme", "quiteme", "borren mi numero", "borrar mi numero", "borrenme", "borrame",
        "saquenme", "no mas mensajes", "no quiero mensajes", "no quiero recibir", "dejen de escribir", "deja de escribir",
        "dejen de mandar", "dejen de enviar", "dejenme en paz", "numero equivocado",
    ]
    /// Phrases that revoke consent wherever they appear in a message (normalized form).
    static let revocationPhrases: [String] = englishPhrases + spanishPhrases

    /// Words that, alone, are opt-out keywords and rarely mean anything else; inside other text
    /// they flag the message for review ("cancel", "end", "quit" are too common to flag).
    static let strongWords: Set<String> = ["stop", "stopall", "unsubscribe", "optout", "revoke", "alto", "basta", "parar"]

    /// Words that, as a message's only meaningful words alongside politeness, still mean stop
    /// ("STOP PLEASE", "please stop!!", "Stop. Thanks").
    static let politeness: Set<String> = ["please", "pls", "plz", "now", "thanks", "thank you", "thx", "por favor", "gracias", "ya"]

    public static func classify(_ text: String) -> InboundIntent {
        let normalized = normalize(text)
        if normalized.isEmpty { return .message }
        if optOut.contains(normalized) { return .optOut(keyword: normalized.uppercased()) }
        if resubscribe.contains(normalized) { return .resubscribe(keyword: normalized.uppercased()) }
        if help.contains(normalized) { return .help(keyword: normalized.uppercased()) }
        // "stop please", "por favor alto", "STOP STOP": only opt-out words and politeness.
        var rest = " " + normalized + " "
        for word in politeness.sorted(by: { $0.count > $1.count }) { rest = rest.replacingOccurrences(of: " \(word) ", with: " ") }
        let core = rest.trimmed(" ")
        let words = core.split(separator: " ").map(String.init)
        if optOut.contains(core) || (!words.isEmpty && words.allSatisfy { optOut.contains($0) }) {
            return .revocation(phrase: normalized)
        }
        let padded = " " + normalized + " "
        for phrase in revocationPhrases where padded.contains(" " + phrase + " ") {
            return .revocation(phrase: phrase)
        }
        if let word = normalized.split(separator: " ").first(where: { strongWords.contains(String($0)) }) {
            return .possibleRevocation(word: String(word))
        }
        return .message
    }

    /// Compatibility-composed (full-width letters become ASCII, "a" + combining accent becomes
    /// "á"), lowercased, diacritics folded (á -> a, ñ -> n), apostrophes dropped (don't -> dont),
    /// other punctuation and symbols turned into spaces, runs of spaces collapsed.
    static func normalize(_ text: String) -> String {
        var out = ""
        var lastWasSpace = true
        for scalar in text.precomposedStringWithCompatibilityMapping.lowercased().unicodeScalars {
            if scalar.properties.generalCategory == .nonspacingMark { continue }
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
