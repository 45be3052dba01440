/// How a `Store` connects and how its pool behaves.
public struct StoreConfiguration: Sendable {
    /// A libpq connection string: `postgresql://user@host/db?…` or `host=… dbname=… user=…`.
    public var url: String
    /// The most connections (and worker threads) the pool opens.
    public var poolSize: Int
    /// How long a caller waits for a free connection before getting `.unavailable`.
    public var maxWait: Duration
    /// How long a connection attempt may take.
    public var connectTimeout: Duration
    /// Prepared statements cached per connection; 0 turns the cache off (e.g. behind an old
    /// pgbouncer in transaction mode that does not track prepared statements).
    public var statementCacheCapacity: Int
    /// How many times a transaction that hit a serialization failure or deadlock is run in total.
    public var maxTransactionAttempts: Int
    /// Sent as `application_name`, visible in `pg_stat_activity`.
    public var applicationName: String
    /// A role to switch to at connection start (`SET ROLE`), for tests and deployments that log
    /// in as one role and act as another.
    public var role: String?

    public init(
        url: String, poolSize: Int = 10, maxWait: Duration = .seconds(5), connectTimeout: Duration = .seconds(5),
        statementCacheCapacity: Int = 256, maxTransactionAttempts: Int = 3, applicationName: String = "ctower",
        role: String? = nil
    ) {
        self.url = url
        self.poolSize = max(1, poolSize)
        self.maxWait = maxWait
        self.connectTimeout = connectTimeout
        self.statementCacheCapacity = statementCacheCapacity
        self.maxTransactionAttempts = max(1, maxTransactionAttempts)
        self.applicationName = applicationName
        self.role = role
    }

    var connectionOptions: PGConnection.Options {
        var options = PGConnection.Options()
        options.applicationName = applicationName
        options.connectTimeoutSeconds = max(2, Int(connectTimeout.components.seconds))
        options.statementCacheCapacity = statementCacheCapacity
        if let role { options.serverSettings.append(("role", role)) }
        return options
    }
}
