/// Save-time checks on a template's text. Errors refuse the save of an enabled variant; warnings
/// are shown to the author. The rules and their severities are the API's documentation too
/// (`proto/ctower/v1/template.proto`), so a change here changes both.
public enum ComplianceLint {
    public struct Finding: Sendable, Hashable {
        public enum Severity: String, Sendable, Hashable { case error, warning }
        public var severity: Severity
        public var code: String
        public var message: String
    }

    public enum Category: Sendable, Hashable { case initial, followUp, reply, help, stop, other }

    /// What the org decides about its own messages.
    public struct Policy: Sendable, Hashable {
        /// The name recipients see; literally present in a body, it identifies the sender as well
        /// as `{brand}` does.
        public var brandName: String?
        /// Whether an initial message without opt-out language is an error (true) or a warning.
        public var requireOptOutLanguage: Bool

        public init(brandName: String? = nil, requireOptOutLanguage: Bool = true) {
            self.brandName = brandName
            self.requireOptOutLanguage = requireOptOutLanguage
        }
    }

    /// Phrases (normalized: lower case, accents folded) that tell a recipient how to opt out.
    static let optOutLanguage = [
        "reply stop", "text stop", "send stop", "txt stop", "stop to", "opt out", "opt-out", "optout", "unsubscribe",
        "stop para", "alto para", "responda alto", "responde alto", "responda stop", "responde stop", "envie alto", "envia alto",
        "escriba alto", "escribe alto", "darse de baja",
    ]
    /// Phrases that tell a recipient that standard message rates may apply.
    static let ratesLanguage = [
        "msg data rates", "msg and data rates", "message and data rates", "tarifas de mensajes", "tarifas de datos",
    ]
    /// The phrases as they are matched: normalized like the text, padded to whole words.
    static let paddedOptOutLanguage = optOutLanguage.map { " " + KeywordClassifier.normalize($0) + " " }
    static let paddedRatesLanguage = ratesLanguage.map { " " + KeywordClassifier.normalize($0) + " " }
    static let shorteners = [
        "bit.ly", "tinyurl.com", "t.co/", "goo.gl", "ow.ly", "is.gd", "buff.ly", "rebrand.ly", "cutt.ly", "shorturl.at", "tiny.cc",
        "t.ly/", "rb.gy",
    ]
    /// Sex, hate, alcohol, firearms, tobacco (and cannabis, gambling): carriers filter or forbid them.
    static let shaft = [
        "cannabis", "marijuana", "weed", "cbd", "thc", "vape", "vaping", "cigar", "cigarette", "tobacco", "alcohol", "beer", "wine",
        "liquor",
        "firearm", "gun", "guns", "ammo", "ammunition", "sex", "sexy", "xxx", "casino", "gambling",
    ]
    /// Above this many segments (with sample values) a message is flagged as costly.
    static let longMessageSegments = 3

    /// Values that stand in for a lead's data when a body is linted or costed at save time.
    public static let sampleValues: [String: String] = [
        "first_name": "Maria", "last_name": "Gonzalez", "full_name": "Maria Gonzalez", "county": "Travis", "state": "TX",
        "property_address": "1234 County Road 210", "property_city": "Bastrop", "mailing_city": "Austin", "acreage": "12.5",
        "apn": "R0123456", "agent_name": "Sam", "phone": "(512) 555-0100",
    ]

    /// The values a body is costed with: the samples plus the org's brand.
    public static func sampleValues(brandName: String?) -> [String: String] {
        var values = sampleValues
        values["brand"] = brandName.flatMap { $0.isEmpty ? nil : $0 } ?? "Brand"
        return values
    }

    public static func check(_ template: TemplateText, raw: String, category: Category, policy: Policy = Policy()) -> [Finding] {
        check(
            template, raw: raw, category: category, policy: policy,
            encoding: MessageEncoding(template.render(sampleValues(brandName: policy.brandName))))
    }

    /// - Parameter encoding: the body rendered with `sampleValues(brandName:)`.
    public static func check(_ template: TemplateText, raw: String, category: Category, policy: Policy, encoding: MessageEncoding)
        -> [Finding]
    {
        var findings: [Finding] = []
        let lower = " " + KeywordClassifier.normalize(raw) + " "
        let rawLower = raw.lowercased()
        func says(_ phrases: [String]) -> Bool { phrases.contains { lower.contains($0) } }
        if category == .initial || category == .help || category == .stop, !namesBrand(template, lower: lower, policy: policy) {
            let fix =
                policy.brandName.map { $0.isEmpty ? "include {brand}" : "include {brand} (or \"\($0)\")" } ?? "include {brand}"
            findings.append(Finding(severity: .error, code: "missing_brand", message: "\(describe(category)) must name the sender: \(fix)"))
        }
        if category == .initial, !says(paddedOptOutLanguage) {
            let required = policy.requireOptOutLanguage
            findings.append(
                Finding(
                    severity: required ? .error : .warning, code: "missing_opt_out",
                    message: required
                        ? "an initial message must say how to opt out, e.g. \"Reply STOP to opt out\" or \"Responde ALTO para no recibir más mensajes\""
                        : "an initial message should say how to opt out (the org does not require it), e.g. \"Reply STOP to opt out\""))
        }
        if category == .help {
            if !says(paddedOptOutLanguage) {
                findings.append(
                    Finding(
                        severity: .error, code: "missing_opt_out",
                        message: "a HELP reply must say how to opt out, e.g. \"Reply STOP to opt out\""))
            }
            if !says(paddedRatesLanguage) {
                findings.append(
                    Finding(
                        severity: .warning, code: "missing_rates",
                        message: "a HELP reply should say \"Msg & data rates may apply\" (\"Pueden aplicarse tarifas de mensajes y datos\")"
                    ))
            }
        }
        for s in shorteners where containsHost(s, in: rawLower) {
            findings.append(
                Finding(
                    severity: .error, code: "link_shortener",
                    message: "public link shorteners such as \(s) are filtered by carriers; use a link on your own domain"))
        }
        for word in shaft where lower.contains(" \(word) ") {
            findings.append(
                Finding(severity: .warning, code: "shaft_content", message: "\"\(word)\" is SHAFT content that carriers filter or forbid"))
        }
        if encoding.charset == .ucs2 {
            let chars = encoding.nonGSMCharacters.map { String($0) }.joined(separator: " ")
            findings.append(
                Finding(
                    severity: .warning, code: "ucs2",
                    message: "\(chars) switch the message to UCS-2: 70 characters per segment instead of 160"))
        }
        if encoding.segments > longMessageSegments {
            findings.append(
                Finding(
                    severity: .warning, code: "long_message",
                    message: "\(encoding.segments) segments with sample values: each one is billed; aim for \(longMessageSegments) or fewer"
                ))
        }
        return findings
    }

    /// Whether `host` appears as a host name, not inside a longer one ("t.ly" is not in "bit.ly").
    static func containsHost(_ host: String, in text: String) -> Bool {
        var rest = text[...]
        while let range = rest.range(of: host) {
            let before = range.lowerBound == text.startIndex ? nil : text[text.index(before: range.lowerBound)]
            if before.map({ !($0.isLetter || $0.isNumber || $0 == "-") }) ?? true { return true }
            rest = text[range.upperBound...]
        }
        return false
    }

    static func namesBrand(_ template: TemplateText, lower: String, policy: Policy) -> Bool {
        if template.variables.contains("brand") { return true }
        guard let brand = policy.brandName.map(KeywordClassifier.normalize), !brand.isEmpty else { return false }
        return lower.contains(" " + brand + " ")
    }

    static func describe(_ category: Category) -> String {
        switch category {
        case .initial: "an initial message"
        case .help: "a HELP reply"
        case .stop: "a STOP confirmation"
        default: "a message"
        }
    }
}
