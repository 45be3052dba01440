import Foundation

/// The fields of a PostgreSQL error report that TowerStore is willing to look at. DETAIL, HINT and
/// the statement are deliberately absent: they can carry row data.
struct ServerErrorFields: Sendable {
    var sqlState: String?
    var primaryMessage: String?
    var constraint: String?
    var table: String?
    var column: String?
    var dataType: String?
}

extension StoreError {
    /// The one place that turns a PostgreSQL error into a `StoreError`.
    ///
    /// `taskCancelled` tells a user-requested cancel (57014 after `PQcancel`) from a statement
    /// timeout, which PostgreSQL reports with the same SQLSTATE.
    init(server fields: ServerErrorFields, taskCancelled: Bool = false) {
        let state = fields.sqlState ?? ""
        let constraint = fields.constraint
        // RLS refusals name the table only inside the message ("… policy for table \"tags\""); a
        // table name is schema, not row data.
        let table = fields.table ?? Self.quotedName(after: "for table ", in: fields.primaryMessage)
        let column = fields.column
        func make(_ code: Code, _ message: String) -> StoreError {
            StoreError(
                code, message, sqlState: fields.sqlState, constraint: constraint, table: table,
                column: column)
        }
        let meaning = constraint.map { ConstraintMeanings.meaning(of: $0, table: table) }
        switch state {
        case "23505":
            self = make(.alreadyExists, meaning ?? "a row with the same unique key already exists")
        case "23503":
            self = make(
                .foreignKeyViolation,
                meaning ?? "the row refers to a row that does not exist, or is still referred to")
        case "23514", "23P01":
            self = make(.checkViolation, meaning ?? "a value breaks a rule of the table")
        case "23502":
            let where_ = [column.map { "column \($0)" }, table.map { "of \($0)" }]
                .compactMap { $0 }.joined(separator: " ")
            self = make(.notNull, "\(where_.isEmpty ? "a required column" : where_) must have a value")
        case "42501":
            if let table, fields.primaryMessage?.contains("row-level security") == true {
                self = make(
                    .permissionDenied,
                    "row-level security refused a row of \(table): it belongs to another org, or no org is set")
            } else {
                self = make(.permissionDenied, "the database role lacks a privilege for this statement")
            }
        case "40001":
            self = make(.serialization, "the transaction conflicted with a concurrent one (serialization failure)")
        case "40P01":
            self = make(.serialization, "the transaction deadlocked with a concurrent one")
        case "57014":
            if taskCancelled {
                self = make(.cancelled, "the query was cancelled because its task was cancelled")
            } else {
                self = make(.timeout, "the query ran past its deadline (statement_timeout)")
            }
        case "P0001":
            // RAISE EXCEPTION from our own migrations: the text is ours and carries no row data.
            self = make(.ruleViolation, fields.primaryMessage ?? "a database rule was violated")
        case "53300", "57P01", "57P02", "57P03":
            self = make(.unavailable, "the database is not accepting queries right now (SQLSTATE \(state))")
        case _ where state.hasPrefix("08"):
            self = make(.unavailable, "the connection to the database failed")
        case _ where state.hasPrefix("22"):
            self = make(.invalidValue, Self.dataExceptionMessage(state: state, fields: fields))
        case _ where state.hasPrefix("42") || state.hasPrefix("0A") || state.hasPrefix("26"):
            // Syntax and catalog errors name identifiers from our own SQL, never bound values.
            self = make(.invalidQuery, fields.primaryMessage ?? "the SQL statement is invalid")
        case _ where state.hasPrefix("25"):
            self = make(.invalidQuery, fields.primaryMessage ?? "invalid transaction state")
        case _ where state.hasPrefix("53") || state.hasPrefix("57") || state.hasPrefix("58"):
            self = make(.unavailable, "the database is out of resources or shutting down (SQLSTATE \(state))")
        default:
            self = make(.internalError, "PostgreSQL reported an error (SQLSTATE \(state.isEmpty ? "none" : state))")
        }
    }

    /// Class 22 messages echo the offending value ("invalid input syntax for type uuid: \"…\""), so
    /// they are replaced by a description of the kind of problem and the type or column involved.
    private static func dataExceptionMessage(state: String, fields: ServerErrorFields) -> String {
        let subject = fields.column.map { "column \($0)" } ?? fields.dataType.map { "type \($0)" } ?? "its column"
        switch state {
        case "22001": return "a value is too long for \(subject)"
        case "22003": return "a number is out of range for \(subject)"
        case "22P02", "22007", "22008", "22P05", "22021":
            return "a value has an invalid format for \(subject)\(typeHint(fields.primaryMessage))"
        case "22012": return "division by zero"
        case "22023": return "an invalid parameter value was given"
        default: return "a value is not valid for \(subject) (SQLSTATE \(state))"
        }
    }

    private static func quotedName(after marker: String, in message: String?) -> String? {
        guard let message, let range = message.range(of: marker + "\"") else { return nil }
        let rest = message[range.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }

    /// Takes only the type name out of "invalid input syntax for type uuid: …".
    private static func typeHint(_ message: String?) -> String {
        guard let message, let range = message.range(of: "for type ") else { return "" }
        let rest = message[range.upperBound...]
        let type = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == " " }
        return type.isEmpty ? "" : " (expected \(type.trimmingCharacters(in: .whitespaces)))"
    }
}
