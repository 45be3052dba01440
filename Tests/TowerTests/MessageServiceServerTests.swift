import Foundation
import Testing
import TowerProto
import TowerRPC
import TowerStore

@testable import Tower

/// MessageService as `ctower serve` assembles it: registered, in the access policy, and
/// SubscribeInbound fed by the server's own LISTEN connection, over real HTTP/2.
@Suite("Message service in the assembled server")
struct MessageServiceServerTests {
    @Test(.timeLimit(.minutes(1))) func subscribeInboundOverHTTP2SeesMessagesCommittedElsewhere() async throws {
        let f = try await InboundFixture.make("Served inbox")
        var options = TowerServer.Options()
        options.port = 0
        options.databaseURL = f.env.store.configuration.url
        // API only: a dispatcher here would claim other suites' messages in the shared database.
        options.role = .api
        options.home = FileManager.default.temporaryDirectory.path + "/ctower-served-\(UUID().uuidString.prefix(8))"
        let server = try await TowerServer.start(options)
        let channel = HTTP2ClientChannel(host: "127.0.0.1", port: server.address.port!)
        defer { try? FileManager.default.removeItem(atPath: options.home) }

        // The server has its own signing key: sign in through it.
        let email = try await f.env.store.withTransaction(tenant: f.org, readOnly: true) { tx in
            try await tx.query("SELECT email FROM users ORDER BY created_at LIMIT 1").one().decode("email", as: String.self)
        }
        var login = LoginRequest()
        login.email = email
        login.password = "correct horse battery"
        let token = try await AuthService.Client(channel: channel).login(login).accessToken
        let lead = try await f.addLead()

        let client = MessageService.Client(channel: channel)
        var request = SubscribeInboundRequest()
        request.since = timestamp(Date().addingTimeInterval(-1))
        let first = try #require(try await f.receive(from: lead.phone, body: "Replay me"))
        let seen = try await client.subscribeInbound(request, options: bearer(token)) { stream in
            var seen: [Message] = []
            for try await message in stream {
                seen.append(message)
                // Written by another connection pool (as a webhook on another server would).
                if seen.count == 1 { _ = try await f.receive(from: lead.phone, body: "HELP") }
                if seen.count == 2 { break }
            }
            return seen
        }
        #expect(seen.first?.id == first.messageID)
        #expect(seen.last?.intent == .help && seen.last?.leadID == lead.lead)

        // A viewer-level call needs credentials; the method is in the access policy.
        #expect(await status { try await client.listInbox(ListInboxRequest()) } == .unauthenticated)
        #expect(try await client.listInbox(ListInboxRequest(), options: bearer(token)).entries.count == 1)

        // Shutdown ends open subscriptions instead of waiting for them.
        let open = Task {
            try await client.subscribeInbound(SubscribeInboundRequest(), options: bearer(token)) { stream in
                var count = 0
                for try await _ in stream { count += 1 }
                return count
            }
        }
        while await server.inbound.subscriptionCount == 0 { await Task.yield() }
        await server.shutdown(grace: .seconds(5))
        #expect(try await open.value == 0)
        await channel.close()
    }
}
