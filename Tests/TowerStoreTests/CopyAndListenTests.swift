import Foundation
import Testing

@testable import TowerStore

@Suite("COPY and LISTEN/NOTIFY")
struct CopyAndListenTests {
    @Test("COPY FROM STDIN streams rows in and COPY TO STDOUT streams them back")
    func copyRoundTrip() async throws {
        let store = try await TestDatabase.get().appStore()
        defer { store.shutdown() }
        let org = try await Fixtures.makeOrg(store)
        let rows: [[String?]] = (0..<2_000).map { index in
            [org.description, "Owner\t\(index)", index % 7 == 0 ? nil : "County \\ \(index)\nline"]
        }
        let (copied, exported) = try await store.withTransaction(tenant: org) { tx in
            let copied = try await tx.bulkInsert(into: "leads", columns: ["org_id", "first_name", "county"], rows: rows)
            var bytes: [UInt8] = []
            var chunks = 0
            let exported = try await tx.copyOut(
                "COPY (SELECT org_id, first_name, county FROM leads ORDER BY (substr(first_name, 7))::int) TO STDOUT",
                chunkSize: 8 * 1024
            ) { chunk in
                chunks += 1
                bytes += chunk
            }
            #expect(chunks > 1)
            #expect(CopyText.parseRows(bytes) == rows)
            return (copied, exported)
        }
        #expect(copied == 2_000)
        #expect(exported == 2_000)
        // RLS applies to COPY too: another tenant copies nothing out.
        let other = try await Fixtures.makeOrg(store)
        let foreign = try await store.withTransaction(tenant: other) { tx in
            try await tx.copyOut("COPY (SELECT * FROM leads) TO STDOUT") { _ in }
        }
        #expect(foreign == 0)
    }

    @Test("an error in the source sequence aborts COPY and rolls back")
    func copyAbort() async throws {
        let store = try await TestDatabase.get().appStore()
        defer { store.shutdown() }
        let org = try await Fixtures.makeOrg(store)
        struct SourceFailed: Error {}
        let failing = AsyncThrowingStream<[UInt8], Error> { continuation in
            var bytes: [UInt8] = []
            CopyText.appendRow([org.description, "partial"], to: &bytes)
            continuation.yield(bytes)
            continuation.finish(throwing: SourceFailed())
        }
        await #expect(throws: SourceFailed.self) {
            try await store.withTransaction(tenant: org) { tx in
                try await tx.bulkInsert(into: "tags", columns: ["org_id", "name"], from: failing)
            }
        }
        let count = try await store.withTransaction(tenant: org) { tx in
            try await tx.query("SELECT count(*) FROM tags").one().decode(0, as: Int.self)
        }
        #expect(count == 0)
        let withParameters = await #expect(throws: StoreError.self) {
            try await store.withTransaction(tenant: org) { tx in
                try await tx.copyOut("COPY (SELECT \(1)) TO STDOUT") { _ in }
            }
        }
        #expect(withParameters?.code == .invalidQuery)
        // Row-level security still judges bulk inserts: another org's rows are refused.
        let other = OrgID.random()
        let smuggled = await #expect(throws: StoreError.self) {
            try await store.withTransaction(tenant: org) { tx in
                try await tx.bulkInsert(into: "tags", columns: ["org_id", "name"], rows: [[other.description, "x"]])
            }
        }
        #expect(smuggled?.code == .permissionDenied)
    }

    @Test("LISTEN delivers notifications committed by another connection")
    func listenNotify() async throws {
        let store = try await TestDatabase.get().appStore()
        defer { store.shutdown() }
        let channel = "inbox_\(UUID().uuidString.prefix(8).lowercased())"
        let listener = try await store.listen(to: [channel])
        defer { listener.stop() }
        let started = ContinuousClock.now
        try await store.withTransaction(tenant: nil) { tx in
            try await tx.notify(channel: channel, payload: "first")
            try await tx.notify(channel: channel, payload: "second")
        }
        var received: [String] = []
        for await notification in listener {
            #expect(notification.channel == channel)
            received.append(notification.payload)
            if received.count == 2 { break }
        }
        #expect(received == ["first", "second"])
        #expect(started.duration(to: .now) < .seconds(2))
        // A rolled-back transaction notifies nobody.
        struct Abort: Error {}
        try? await store.withTransaction(tenant: nil) { tx in
            try await tx.notify(channel: channel, payload: "never")
            throw Abort()
        }
        try await store.withTransaction(tenant: nil) { tx in try await tx.notify(channel: channel, payload: "third") }
        var iterator = listener.makeAsyncIterator()
        #expect(await iterator.next()?.payload == "third")
    }

    @Test("stopping or releasing a listener ends its sequence")
    func listenerEnds() async throws {
        let store = try await TestDatabase.get().appStore()
        defer { store.shutdown() }
        let stopped = try await store.listen(to: ["ends_a"])
        stopped.stop()
        var stoppedIterator = stopped.makeAsyncIterator()
        #expect(await stoppedIterator.next() == nil)

        var released: NotificationListener? = try await store.listen(to: ["ends_b"])
        var releasedIterator = released!.makeAsyncIterator()
        released = nil
        #expect(released == nil)
        #expect(await releasedIterator.next() == nil)
    }
}
