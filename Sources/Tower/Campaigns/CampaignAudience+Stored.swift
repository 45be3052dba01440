import Foundation
import TowerProto
import TowerProtoRuntime

/// A campaign's audience as validated values, stored as `campaigns.audience` (jsonb) and bound
/// into the audience query as arrays.
struct StoredAudience: Sendable, Hashable {
    var listIDs: [String] = []
    var tagIDs: [String] = []
    var matchAllTags = false
    var states: [String] = []
    /// Lower-cased, without a "County" suffix.
    var counties: [String] = []
    var minScore: Int?
    var maxScore: Int?
    /// Database names: unknown, granted, revoked.
    var consent: [String] = []

    /// Validates an API audience; field names are prefixed with `field` (e.g. "audience").
    init(_ audience: CampaignAudience?, field: String) throws {
        guard let audience else { return }
        var violations: [FieldViolationInput] = []
        for (index, id) in audience.listIds.enumerated() where UUIDText(id) == nil {
            violations.append(("\(field).list_ids[\(index)]", "must be a lead list id (UUID) as returned by this API"))
        }
        for (index, id) in audience.tagIds.enumerated() where UUIDText(id) == nil {
            violations.append(("\(field).tag_ids[\(index)]", "must be a tag id (UUID) as returned by this API"))
        }
        listIDs = Array(Set(audience.listIds.map { $0.lowercased() })).sorted()
        tagIDs = Array(Set(audience.tagIds.map { $0.lowercased() })).sorted()
        switch audience.tagMatch {
        case .unspecified, .any: matchAllTags = false
        case .all: matchAllTags = true
        default: violations.append(("\(field).tag_match", "must be ANY or ALL"))
        }
        for (index, state) in audience.states.enumerated() {
            let code = state.trimmingCharacters(in: .whitespaces).uppercased()
            if code.wholeMatch(of: /[A-Z]{2}/) == nil {
                violations.append(("\(field).states[\(index)]", "must be a two-letter USPS code such as TX"))
            } else if !states.contains(code) {
                states.append(code)
            }
        }
        for (index, county) in audience.counties.enumerated() {
            let name = LeadFieldNormalizer.county(county).lowercased()
            if name.isEmpty || name.count > 100 {
                violations.append(("\(field).counties[\(index)]", "must be a county name such as Travis (1 to 100 characters)"))
            } else if !counties.contains(name) {
                counties.append(name)
            }
        }
        minScore = audience.minScore.map(Int.init)
        maxScore = audience.maxScore.map(Int.init)
        if let s = minScore, !(0...100).contains(s) { violations.append(("\(field).min_score", "must be 0 to 100")) }
        if let s = maxScore, !(0...100).contains(s) { violations.append(("\(field).max_score", "must be 0 to 100")) }
        if let lo = minScore, let hi = maxScore, lo > hi {
            violations.append(("\(field).max_score", "must be at least min_score (\(lo))"))
        }
        for (index, consent) in audience.consent.enumerated() {
            let name: String? =
                switch consent {
                case .unknown: "unknown"
                case .granted: "granted"
                case .revoked: "revoked"
                default: nil
                }
            guard let name else {
                violations.append(("\(field).consent[\(index)]", "must be UNKNOWN, GRANTED or REVOKED"))
                continue
            }
            if !self.consent.contains(name) { self.consent.append(name) }
        }
        try throwIfInvalid(violations)
    }

    init(json: String) {
        guard let value = try? JSONValue.parse(json) else { return }
        func strings(_ key: String) -> [String] {
            guard case .array(let items)? = value[key] else { return [] }
            return items.compactMap { if case .string(let s) = $0 { s } else { nil } }
        }
        func int(_ key: String) -> Int? {
            guard case .number(let text)? = value[key] else { return nil }
            return Int(text)
        }
        listIDs = strings("list_ids")
        tagIDs = strings("tag_ids")
        if case .string(let match)? = value["tag_match"] { matchAllTags = match == "all" }
        states = strings("states")
        counties = strings("counties")
        minScore = int("min_score")
        maxScore = int("max_score")
        consent = strings("consent")
    }

    var json: String {
        var members: [(String, JSONValue)] = [
            ("list_ids", .array(listIDs.map { .string($0) })),
            ("tag_ids", .array(tagIDs.map { .string($0) })),
            ("tag_match", .string(matchAllTags ? "all" : "any")),
            ("states", .array(states.map { .string($0) })),
            ("counties", .array(counties.map { .string($0) })),
            ("consent", .array(consent.map { .string($0) })),
        ]
        if let minScore { members.append(("min_score", .number(String(minScore)))) }
        if let maxScore { members.append(("max_score", .number(String(maxScore)))) }
        return JSONValue.object(members).serialized()
    }

    var proto: CampaignAudience {
        var a = CampaignAudience()
        a.listIds = listIDs
        a.tagIds = tagIDs
        a.tagMatch = matchAllTags ? .all : .any
        a.states = states
        a.counties = counties
        a.minScore = minScore.map(Int32.init)
        a.maxScore = maxScore.map(Int32.init)
        a.consent = consent.map {
            switch $0 {
            case "granted": .granted
            case "revoked": .revoked
            default: .unknown
            }
        }
        return a
    }
}
