import Testing
import TowerHTTPClient
import TowerProtoRuntime

@Suite("TowerHTTPClient against a local server")
struct HTTPClientTests {
    @Test func formEncodingRoundTripsAndMatchesTheStandard() {
        let fields = [("To", "+1 512"), ("Body", "Hola ¿qué tal? a&b=c"), ("Empty", "")]
        let encoded = FormEncoding.encode(fields)
        #expect(encoded == "To=%2B1+512&Body=Hola+%C2%BFqu%C3%A9+tal%3F+a%26b%3Dc&Empty=")
        let decoded = FormEncoding.decode(encoded)
        #expect(decoded.map(\.0) == fields.map(\.0) && decoded.map(\.1) == fields.map(\.1))
        #expect(FormEncoding.decode("a=%zz&b").map(\.1) == ["%zz", ""])
    }

    @Test func getsAndReusesTheClient() async throws {
        let fake = try await FakeTwilio()
        defer { Task { await fake.close() } }
        let client = HTTPClient()
        let auth = BasicAuth(username: fake.accountSID, password: fake.authToken)
        for _ in 0..<3 {
            let response = try await client.execute(
                HTTPRequest(method: .get, url: fake.baseURL + "/2010-04-01/Accounts/\(fake.accountSID).json", basicAuth: auth))
            #expect(response.status == 200)
            #expect(response.header("content-type")?.hasPrefix("application/json") == true)
            #expect(try JSONValue.parse(response.text)["status"] == .string("active"))
        }
        let refused = try await client.execute(
            HTTPRequest(method: .get, url: fake.baseURL + "/2010-04-01/Accounts/\(fake.accountSID).json"))
        #expect(refused.status == 401)
        #expect(fake.requests.count == 4)
    }

    @Test func connectionRefusedIsNotSent() async throws {
        let client = HTTPClient()
        let error = await #expect(throws: HTTPClientError.self) {
            try await client.execute(.form(url: "http://127.0.0.1:\(TestSupport.closedPort())/x", fields: [("a", "b")]))
        }
        #expect(error?.code == .connectFailed)
        #expect(error?.delivery == .notSent)
    }

    @Test func unresolvableHostIsNotSent() async throws {
        let error = await #expect(throws: HTTPClientError.self) {
            try await HTTPClient().execute(HTTPRequest(method: .post, url: "http://no-such-host.invalid/x", connectTimeout: .seconds(3)))
        }
        #expect(error?.code == .resolveFailed)
        #expect(error?.delivery == .notSent)
    }

    @Test func timeoutAfterSendingMayHaveBeenSent() async throws {
        let fake = try await FakeTwilio()
        defer { Task { await fake.close() } }
        fake.failNext(.hang)
        let error = await #expect(throws: HTTPClientError.self) {
            try await HTTPClient().execute(
                .form(
                    url: fake.baseURL + "/2010-04-01/Accounts/\(fake.accountSID)/Messages.json", fields: [("To", "+15125550100")],
                    timeout: .milliseconds(300),
                    basicAuth: BasicAuth(username: fake.accountSID, password: fake.authToken)))
        }
        #expect(error?.code == .timedOut)
        #expect(error?.delivery == .maybeSent)
    }

    @Test func droppedConnectionMayHaveBeenSent() async throws {
        let fake = try await FakeTwilio()
        defer { Task { await fake.close() } }
        fake.failNext(.dropAfterProcessing)
        let error = await #expect(throws: HTTPClientError.self) {
            try await HTTPClient().execute(
                .form(
                    url: fake.baseURL + "/2010-04-01/Accounts/\(fake.accountSID)/Messages.json",
                    fields: [("To", "+15125550100"), ("From", "+15125550199"), ("Body", "x")],
                    basicAuth: BasicAuth(username: fake.accountSID, password: fake.authToken)))
        }
        #expect(error?.code == .connectionLost)
        #expect(error?.delivery == .maybeSent)
        #expect(fake.messages.count == 1)
    }

    @Test func cancellingTheTaskAbortsTheTransfer() async throws {
        let fake = try await FakeTwilio()
        defer { Task { await fake.close() } }
        fake.failNext(.hang)
        let task = Task {
            try await HTTPClient().execute(
                .form(
                    url: fake.baseURL + "/2010-04-01/Accounts/\(fake.accountSID)/Messages.json", fields: [("To", "1")],
                    timeout: .seconds(30),
                    basicAuth: BasicAuth(username: fake.accountSID, password: fake.authToken)))
        }
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        task.cancel()
        let result = await task.result
        #expect(ContinuousClock.now - started < .seconds(5))
        guard case .failure(let error as HTTPClientError) = result else {
            Issue.record("expected a cancellation error, got \(result)")
            return
        }
        #expect(error.code == .cancelled)
        #expect(error.delivery == .maybeSent)
    }
}
