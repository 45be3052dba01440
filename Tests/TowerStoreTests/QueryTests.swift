import Foundation
import Testing

@testable import TowerStore

@Suite("Queries and transactions against PostgreSQL")
struct QueryTests {
    @Test("values round-trip through bound parameters")
    func roundTrip() async throws {
        let store = try await TestDatabase.get().appStore()
        defer { store.shutdown() }
        let id = UUID()
        let date = Date(timeIntervalSince1970: 1_700_000_000.123456)
        let bytes: [UInt8] = [0, 1, 2, 250, 255]
        let none: String? = nil
        let row = try await store.withTransaction(tenant: nil) { tx in
            try await tx.query(
                """
                SELECT \(Int(42))::int8 AS i, \(Int64.max) AS big, \(3.25) AS d, \(true) AS b, \("héllo ñ 👋") AS s,
                       \(id) AS u, \(date) AS t, \(bytes) AS bytes, \(none)::text AS n, \(["a", "b,c", "d\"e"]) AS arr,
                       '2024-02-29'::date AS day
                """
            ).one()
        }
        #expect(try row.decode("i", as: Int.self) == 42)
        #expect(try row.decode("big", as: Int64.self) == Int64.max)
        #expect(try row.decode("d", as: Double.self) == 3.25)
        #expect(try row.decode("b", as: Bool.self) == true)
        #expect(try row.decode("s", as: String.self) == "héllo ñ 👋")
        #expect(try row.decode("u", as: UUID.self) == id)
        let decodedDate = try row.decode("t", as: Date.self)
        #expect(abs(decodedDate.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000_002)
        #expect(try row.decode("bytes", as: [UInt8].self) == bytes)
        #expect(try row.decode("n", as: String?.self) == nil)
        #expect(try row.decode("arr", as: [String].self) == ["a", "b,c", "d\"e"])
        #expect(try row.decode("day", as: Date.self) == Date(timeIntervalSince1970: 1_709_164_800))
        let (i, big) = try row.decode((Int, Int64).self)
        #expect(i == 42 && big == Int64.max)
    }

    @Test("an injection attempt stays a literal value")
    func injectionStaysLiteral() async throws {
        let store = try await TestDatabase.get().appStore()
        defer { store.shutdown() }
        let attack = "x'; DROP TABLE leads; --"
        let result = try await store.withTransaction(tenant: nil) { tx in
            try await tx.query("SELECT \(attack) AS value, (SELECT count(*) FROM pg_class WHERE relname = 'leads') AS tables")
        }
        #expect(try result.one().decode("value", as: String.self) == attack)
        #expect(try result.one().decode("tables", as: Int.self) == 1)
    }

    @Test("a NULL into a non-optional, or a bad value, names the column, never the value")
    func decodingErrors() async throws {
        let store = try await TestDatabase.get().appStore()
        defer { store.shutdown() }
        let row = try await store.withTransaction(tenant: nil) { tx in
            try await tx.query("SELECT NULL::text AS missing, 'secret-value' AS word").one()
        }
        let nullError = #expect(throws: StoreError.self) { try row.decode("missing", as: String.self) }
        #expect(nullError?.code == .decoding)
        let typeError = #expect(throws: StoreError.self) { try row.decode("word", as: Int.self) }
        #expect(typeError?.message.contains("secret-value") == false)
        #expect(typeError?.message.contains("word") == true)
    }

    @Test("a throwing body rolls the transaction back")
    func rollbackOnThrow() async throws {
        let database = try await TestDatabase.get()
        let store = database.appStore()
        defer { store.shutdown() }
        let org = try await Fixtures.makeOrg(store)
        struct Oops: Error {}
        await #expect(throws: Oops.self) {
            try await store.withTransaction(tenant: org) { tx in
                try await tx.execute("INSERT INTO tags (org_id, name) VALUES (\(org), 'rolled-back')")
                throw Oops()
            }
        }
        let count = try await store.withTransaction(tenant: org) { tx in
            try await tx.query("SELECT count(*) FROM tags WHERE name = 'rolled-back'").one().decode(0, as: Int.self)
        }
        #expect(count == 0)
    }

    @Test("unique violation maps to alreadyExists and the message holds no row data")
    func uniqueViolation() async throws {
        let store = try await TestDatabase.get().appStore()
        defer { store.shutdown() }
        let org = try await Fixtures.makeOrg(store)
        let secretName = "Tag-\(UUID().uuidString)"
        let error = await #expect(throws: StoreError.self) {
            try await store.withTransaction(tenant: org) { tx in
                try await tx.execute("INSERT INTO tags (org_id, name) VALUES (\(org), \(secretName))")
                try await tx.execute("INSERT INTO tags (org_id, name) VALUES (\(org), \(secretName.lowercased()))")
            }
        }
        #expect(error?.code == .alreadyExists)
        #expect(error?.sqlState == "23505")
        #expect(error?.constraint == "tags_name_unique")
        #expect(error?.message == "a tag with this name already exists")
        #expect(error?.description.contains(secretName) == false)
        #expect(error?.description.lowercased().contains(secretName.lowercased()) == false)
    }

    @Test("check, foreign key, not-null and bad-syntax errors are mapped without echoing values")
    func otherViolations() async throws {
        let store = try await TestDatabase.get().appStore()
        defer { store.shutdown() }
        let org = try await Fixtures.makeOrg(store)
        let lead = UUID()
        try await store.withTransaction(tenant: org) { tx in
            try await tx.execute("INSERT INTO leads (id, org_id, first_name) VALUES (\(lead), \(org), 'Ana')")
        }
        let badPhone = "555-0100-secret"
        let check = await #expect(throws: StoreError.self) {
            try await store.withTransaction(tenant: org) { tx in
                try await tx.execute(
                    "INSERT INTO lead_phones (org_id, lead_id, position, phone) VALUES (\(org), \(lead), 1, \(badPhone))")
            }
        }
        #expect(check?.code == .checkViolation)
        #expect(check?.message.contains("E.164") == true)
        #expect(check?.description.contains(badPhone) == false)

        let fourth = await #expect(throws: StoreError.self) {
            try await store.withTransaction(tenant: org) { tx in
                try await tx.execute(
                    "INSERT INTO lead_phones (org_id, lead_id, position, phone) VALUES (\(org), \(lead), 4, '+15551230004')")
            }
        }
        #expect(fourth?.constraint == "lead_phones_position_range")

        let foreign = await #expect(throws: StoreError.self) {
            try await store.withTransaction(tenant: org) { tx in
                try await tx.execute(
                    "INSERT INTO lead_phones (org_id, lead_id, position, phone) VALUES (\(org), \(UUID()), 1, '+15551230001')")
            }
        }
        #expect(foreign?.code == .foreignKeyViolation)
        #expect(foreign?.message.contains("lead") == true)

        let notNull = await #expect(throws: StoreError.self) {
            try await store.withTransaction(tenant: org) { tx in
                try await tx.execute("INSERT INTO tags (org_id, name) VALUES (\(org), NULL)")
            }
        }
        #expect(notNull?.code == .notNull)
        #expect(notNull?.column == "name")

        let secret = "not-a-uuid-secret"
        let syntax = await #expect(throws: StoreError.self) {
            try await store.withTransaction(tenant: org) { tx in
                try await tx.query("SELECT \(secret)::uuid")
            }
        }
        #expect(syntax?.code == .invalidValue)
        #expect(syntax?.description.contains(secret) == false)
    }

    @Test("a serialization failure runs the body again")
    func serializationRetry() async throws {
        let store = try await TestDatabase.get().appStore()
        defer { store.shutdown() }
        let attempts = Counter()
        let value = try await store.withTransaction(tenant: nil) { tx in
            if attempts.increment() == 1 {
                try await tx.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
            }
            return "done"
        }
        #expect(value == "done")
        #expect(attempts.value == 2)

        let always = Counter()
        let error = await #expect(throws: StoreError.self) {
            try await store.withTransaction(tenant: nil) { tx in
                always.increment()
                try await tx.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40P01'; END $$")
            }
        }
        #expect(error?.code == .serialization)
        #expect(always.value == store.configuration.maxTransactionAttempts)
    }

    @Test("the deadline becomes statement_timeout")
    func deadline() async throws {
        let store = try await TestDatabase.get().appStore()
        defer { store.shutdown() }
        let started = ContinuousClock.now
        let error = await #expect(throws: StoreError.self) {
            try await store.withTransaction(tenant: nil, deadline: .now + .milliseconds(300)) { tx in
                try await tx.query("SELECT pg_sleep(5)")
            }
        }
        #expect(error?.code == .timeout)
        #expect(started.duration(to: .now) < .seconds(3))
        let passed = await #expect(throws: StoreError.self) {
            try await store.withTransaction(tenant: nil, deadline: .now - .seconds(1)) { _ in }
        }
        #expect(passed?.code == .timeout)
    }

    @Test("cancelling the task cancels the running query")
    func cancellation() async throws {
        let store = try await TestDatabase.get().appStore()
        defer { store.shutdown() }
        let started = ContinuousClock.now
        let task = Task {
            try await store.withTransaction(tenant: nil) { tx in
                try await tx.query("SELECT pg_sleep(10)")
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        let result = await task.result
        #expect(started.duration(to: .now) < .seconds(5))
        guard case .failure(let error as StoreError) = result else {
            Issue.record("expected a StoreError, got \(result)")
            return
        }
        #expect(error.code == .cancelled)
        // The connection is healthy afterwards.
        let one = try await store.withTransaction(tenant: nil) { tx in try await tx.query("SELECT 1").one().decode(0, as: Int.self) }
        #expect(one == 1)
    }

    @Test("a pool with no free connection fails with unavailable after maxWait")
    func poolExhaustion() async throws {
        let store = try await TestDatabase.get().appStore(poolSize: 1, maxWait: .milliseconds(200))
        defer { store.shutdown() }
        let holding = Task {
            try await store.withTransaction(tenant: nil) { tx in try await tx.query("SELECT pg_sleep(1.5)") }
        }
        try await Task.sleep(for: .milliseconds(200))
        let error = await #expect(throws: StoreError.self) {
            try await store.withTransaction(tenant: nil) { tx in try await tx.query("SELECT 1") }
        }
        #expect(error?.code == .unavailable)
        _ = try await holding.value
    }

    @Test("a tenant set in one transaction does not leak into the next on the same connection")
    func tenantDoesNotLeak() async throws {
        let store = try await TestDatabase.get().appStore(poolSize: 1)
        defer { store.shutdown() }
        let org = OrgID.random()
        let inside = try await store.withTransaction(tenant: org) { tx in
            try await tx.query("SELECT ctower_current_org()").one().decode(0, as: OrgID?.self)
        }
        #expect(inside == org)
        let after = try await store.withTransaction(tenant: nil) { tx in
            try await tx.query("SELECT ctower_current_org()").one().decode(0, as: OrgID?.self)
        }
        #expect(after == nil)
    }
}

/// A thread-safe counter for retry tests.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    @discardableResult
    func increment() -> Int {
        lock.lock()
        defer { lock.unlock() }
        count += 1
        return count
    }
    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }
}

enum Fixtures {
    /// Creates a standalone org as the app role: the tenant is the new org itself.
    static func makeOrg(_ store: Store, kind: String = "standard", parent: OrgID? = nil) async throws -> OrgID {
        let org = OrgID.random()
        try await store.withTransaction(tenant: parent ?? org) { tx in
            try await tx.execute(
                "INSERT INTO orgs (id, name, kind, parent_org_id) VALUES (\(org), \("Org \(org)"), \(kind), \(parent))")
        }
        return org
    }
}

@Suite("Prepared-statement cache")
struct PreparedStatementTests {
    @Test("a statement cached before a schema change is re-prepared transparently")
    func staleStatement() async throws {
        let database = try await TestDatabase.get()
        guard let cluster = database.cluster else { return }
        let table = "stale_\(UUID().uuidString.prefix(8).lowercased())"
        let owner = Store(configuration: StoreConfiguration(url: cluster.ownerURL, poolSize: 1))
        defer { owner.shutdown() }
        try await owner.withTransaction(tenant: nil) { tx in
            try await tx.execute("CREATE TABLE \(identifier: table) (a int)", prepared: false)
            try await tx.execute("INSERT INTO \(identifier: table) VALUES (1)", prepared: false)
        }
        let select: SQL = "SELECT * FROM \(identifier: table)"
        let before = try await owner.withTransaction(tenant: nil) { tx in try await tx.query(select).columns }
        #expect(before == ["a"])
        let other = Store(configuration: StoreConfiguration(url: cluster.ownerURL, poolSize: 1))
        defer { other.shutdown() }
        try await other.withTransaction(tenant: nil) { tx in
            try await tx.execute("ALTER TABLE \(identifier: table) ADD COLUMN b int", prepared: false)
        }
        let after = try await owner.withTransaction(tenant: nil) { tx in try await tx.query(select).columns }
        #expect(after == ["a", "b"])
    }
}
