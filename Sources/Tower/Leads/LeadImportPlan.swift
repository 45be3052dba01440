/// Where each column of an imported file goes: resolved once from the header row and the
/// caller's mapping (or the suggestion), then applied to every row.
public struct LeadImportPlan: Sendable, Hashable {
    public enum Target: Sendable, Hashable {
        case ignore
        /// Kept in custom_fields under this key.
        case custom(String)
        /// A lead field; for phone columns, the line type the header implies.
        case field(ColumnMapping.Field, phoneKind: ColumnMapping.PhoneKind?)
    }

    public struct Column: Sendable, Hashable {
        public var header: String
        public var target: Target
    }

    public var columns: [Column]

    public init(columns: [Column]) { self.columns = columns }

    /// One requested mapping entry: a header name and where it goes.
    public struct Request: Sendable, Hashable {
        public var column: String
        public var target: Target
        public init(column: String, target: Target) {
            self.column = column
            self.target = target
        }
    }

    /// A problem with the header row or the mapping: the field path of the request and the fix.
    public struct Problem: Error, Sendable, Hashable {
        public var field: String
        public var fix: String
    }

    /// Header cells as the plan names them: trimmed, and "Column N" where a header is empty.
    public static func headers(_ cells: [String]) -> [String] {
        cells.enumerated().map { index, cell in
            let trimmed = cell.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            return trimmed.isEmpty ? "Column \(index + 1)" : trimmed
        }
    }

    /// The suggested plan: ColumnMapping's guess per header, custom fields where nothing fits.
    /// ExportLeads' own columns map back: "Custom: KEY" to custom field KEY, and its output-only
    /// columns are ignored, so an export imports back as the same leads.
    public static func suggested(headers: [String]) -> LeadImportPlan {
        // Export columns are set aside first: "Custom: Phone note" must not take a phone's slot.
        let open = headers.indices.filter { i in
            customKey(header: headers[i]) == headers[i] && !exportOnlyHeaders.contains(headers[i].lowercased())
        }
        var fields = [ColumnMapping.Field?](repeating: nil, count: headers.count)
        for (index, field) in zip(open, ColumnMapping.suggest(headers: open.map { headers[$0] })) { fields[index] = field }
        return LeadImportPlan(
            columns: zip(headers, fields).map { header, field in
                if exportOnlyHeaders.contains(header.lowercased()) { return Column(header: header, target: .ignore) }
                guard let field else { return Column(header: header, target: .custom(customKey(header: header))) }
                return Column(header: header, target: .field(field, phoneKind: phoneKind(field, header)))
            })
    }

    /// How ExportLeads heads the column of custom field KEY: "Custom: KEY".
    public static let customPrefix = "Custom: "

    /// ExportLeads' output-only columns (lowercased): tags, score and status are not imported.
    public static let exportOnlyHeaders: Set<String> = ["tags", "score", "lead status", "lead id"]

    /// The custom field key a column's header names: KEY for "Custom: KEY" (any case), else the header.
    public static func customKey(header: String) -> String {
        let prefix = customPrefix.lowercased().filter { !$0.isWhitespace }
        guard header.lowercased().hasPrefix(prefix) else { return header }
        let key = header.dropFirst(prefix.count).drop(while: \.isWhitespace)
        return key.isEmpty ? header : String(key)
    }

    static func phoneKind(_ field: ColumnMapping.Field, _ header: String) -> ColumnMapping.PhoneKind? {
        [.phone1, .phone2, .phone3].contains(field) ? ColumnMapping.phoneKind(impliedByHeader: header) : nil
    }

    /// The plan for an explicit mapping: each entry names a header; columns it does not name are
    /// ignored. Throws the problems found, each naming the entry and the fix.
    public static func resolve(headers: [String], requests: [Request], path: String = "column_mapping") throws(ProblemList)
        -> LeadImportPlan
    {
        var problems: [Problem] = []
        var columns = headers.map { Column(header: $0, target: .ignore) }
        var positions: [String: [Int]] = [:]
        for (index, header) in headers.enumerated() { positions[header.lowercased(), default: []].append(index) }
        var fieldOwner: [ColumnMapping.Field: String] = [:]
        var columnSeen: Set<Int> = []
        let listed = headers.prefix(20).map { "\"\($0)\"" }.joined(separator: ", ") + (headers.count > 20 ? ", …" : "")
        for (i, request) in requests.enumerated() {
            let name = request.column.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            guard !name.isEmpty else {
                problems.append(Problem(field: "\(path)[\(i)].column", fix: "name a column of the header row"))
                continue
            }
            guard let found = positions[name.lowercased()] else {
                problems.append(
                    Problem(
                        field: "\(path)[\(i)].column",
                        fix: "the header row has no column \"\(name)\"; use one of its columns: \(listed)"))
                continue
            }
            guard found.count == 1 else {
                problems.append(
                    Problem(
                        field: "\(path)[\(i)].column",
                        fix: "\"\(name)\" names \(found.count) columns of the header row; rename them so each header is unique"))
                continue
            }
            let index = found[0]
            guard columnSeen.insert(index).inserted else {
                problems.append(Problem(field: "\(path)[\(i)].column", fix: "\"\(name)\" is mapped twice; give each column one entry"))
                continue
            }
            if case .field(let field, _) = request.target {
                if let owner = fieldOwner[field] {
                    problems.append(
                        Problem(
                            field: "\(path)[\(i)].field",
                            fix: "\(field.rawValue) is already mapped from column \"\(owner)\"; map each field from one column"))
                    continue
                }
                fieldOwner[field] = headers[index]
            }
            columns[index].target = request.target
        }
        if !problems.isEmpty { throw ProblemList(problems: problems) }
        let plan = LeadImportPlan(columns: columns)
        if !plan.hasPhone {
            throw ProblemList(problems: [
                Problem(field: path, fix: "no column is mapped to phone_1, phone_2 or phone_3; map the column that holds phone numbers")
            ])
        }
        return plan
    }

    public struct ProblemList: Error, Sendable, Hashable {
        public var problems: [Problem]
    }

    public var hasPhone: Bool {
        columns.contains {
            if case .field(let f, _) = $0.target { return [.phone1, .phone2, .phone3].contains(f) }
            return false
        }
    }
}
