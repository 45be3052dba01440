/// The one error type TowerStore throws.
///
/// `message` is written for a caller: it names the rule that was broken (from the constraint's
/// meaning) and never echoes row data. PostgreSQL's DETAIL text, which repeats the offending
/// values, is never read, so a `StoreError` is safe to log and to return over RPC.
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, coarse enough to map to an RPC status in one place.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The database cannot be reached (down, restarting, pool exhausted past its max wait).
        public static let unavailable = Code("unavailable")
        /// A unique constraint was violated (SQLSTATE 23505).
        public static let alreadyExists = Code("alreadyExists")
        /// A foreign key was violated (23503): the referenced row does not exist or is still in use.
        public static let foreignKeyViolation = Code("foreignKeyViolation")
        /// A CHECK or exclusion constraint was violated (23514, 23P01).
        public static let checkViolation = Code("checkViolation")
        /// A NOT NULL column was given no value (23502).
        public static let notNull = Code("notNull")
        /// A value does not fit its column type (class 22: bad syntax, too long, out of range).
        public static let invalidValue = Code("invalidValue")
        /// Serialization failure or deadlock (40001, 40P01) that survived the retries.
        public static let serialization = Code("serialization")
        /// The deadline passed (statement_timeout, or the deadline was already over).
        public static let timeout = Code("timeout")
        /// The Swift task was cancelled and the query with it.
        public static let cancelled = Code("cancelled")
        /// Insufficient privilege, including a row refused by a row-level security policy (42501).
        public static let permissionDenied = Code("permissionDenied")
        /// The SQL itself is wrong (syntax, unknown column, wrong type): a programming error.
        public static let invalidQuery = Code("invalidQuery")
        /// A row could not be decoded into the requested Swift type.
        public static let decoding = Code("decoding")
        /// A migration problem: edited after it was applied, failed, or badly named.
        public static let migration = Code("migration")
        /// Misconfiguration: bad URL, missing PostgreSQL binaries, unusable folder.
        public static let configuration = Code("configuration")
        /// A raised exception from our own triggers and functions (P0001); their text is ours.
        public static let ruleViolation = Code("ruleViolation")
        /// Anything else.
        public static let internalError = Code("internal")
    }

    public var code: Code
    /// Safe for a caller to read: no row data.
    public var message: String
    /// The five-character SQLSTATE, when PostgreSQL reported one.
    public var sqlState: String?
    /// The violated constraint's name, when PostgreSQL reported one.
    public var constraint: String?
    /// The table involved, when PostgreSQL reported one.
    public var table: String?
    /// The column involved, when PostgreSQL reported one.
    public var column: String?

    public init(
        _ code: Code, _ message: String, sqlState: String? = nil, constraint: String? = nil,
        table: String? = nil, column: String? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.constraint = constraint
        self.table = table
        self.column = column
    }

    public var description: String {
        var text = "StoreError.\(code): \(message)"
        if let sqlState { text += " [SQLSTATE \(sqlState)]" }
        if let constraint { text += " [constraint \(constraint)]" }
        return text
    }

    /// Whether running the same transaction again may succeed.
    public var isRetryableConflict: Bool { sqlState == "40001" || sqlState == "40P01" }

    /// A prepared statement that went stale: the transaction is retried with a fresh one.
    var isStaleStatement: Bool {
        sqlState == "26000" || (sqlState == "0A000" && message.contains("cached plan"))
    }
}
