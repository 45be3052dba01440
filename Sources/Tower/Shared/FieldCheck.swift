/// Checks of request fields that several services share. Each failure is INVALID_ARGUMENT naming
/// the field (with its index for lists) and the fix.
enum FieldCheck {
    /// A name or label shown in lists: surrounding whitespace trimmed and inner runs of
    /// whitespace (line breaks included) made one space; 1 to `maxLength` characters.
    static func name(_ raw: String, field: String = "name", maxLength: Int) throws -> String {
        let name = raw.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        guard !name.isEmpty, name.count <= maxLength else { throw DomainError.invalid(field, "must be 1 to \(maxLength) characters") }
        return name
    }

    /// Ids (UUIDs) a request lists: each checked (`field[i]`), lowercased and kept once, in the
    /// order given. `required`: at least one; `max`: at most that many given.
    static func ids(_ values: [String], field: String, required: Bool = false, max: Int? = nil) throws -> [String] {
        if required, values.isEmpty { throw DomainError.invalid(field, "name at least one id") }
        if let max, values.count > max { throw DomainError.invalid(field, "at most \(max) ids per call") }
        var seen: Set<String> = []
        var ids: [String] = []
        for (index, id) in values.enumerated() {
            guard UUIDText(id) != nil else {
                throw DomainError.invalid("\(field)[\(index)]", "must be an id (UUID) as returned by this API")
            }
            let lower = id.lowercased()
            if seen.insert(lower).inserted { ids.append(lower) }
        }
        return ids
    }
}
