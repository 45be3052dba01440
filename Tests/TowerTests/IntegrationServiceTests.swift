import Foundation
import Testing
import TowerCrypto
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

@testable import Tower

/// IntegrationService and the carrier webhook ingress against the real database and real plugin
/// processes (`ctower-carrier-mock`, `ctower-carrier-twilio`, built next to the tests by
/// `swift build --build-tests`).
@Suite("Carrier integrations")
struct IntegrationServiceTests {
    static let pluginDirectory: String = {
        if let dir = ProcessInfo.processInfo.environment["CTOWER_CARRIER_PLUGIN_DIR"] { return dir }
        return CarrierRegistry.Configuration.executableDirectory
    }()

    static var pluginsBuilt: Bool {
        ["mock", "twilio"].allSatisfy { FileManager.default.isExecutableFile(atPath: pluginDirectory + "/ctower-carrier-" + $0) }
    }

    static let registry: CarrierRegistry = {
        var configuration = CarrierRegistry.Configuration(pluginDirectories: [pluginDirectory], searchPATH: false)
        configuration.adjust = { $0.shutdownGrace = .seconds(1) }
        return CarrierRegistry(configuration: configuration)
    }()

    struct Fixture {
        let env: IdentityEnvironment
        let channel: InProcessChannel
        let client: IntegrationService.Client
        let ingress: CarrierWebhookIngress
    }

    static func fixture() async throws -> Fixture {
        let env = try await IdentityEnvironment.get()
        let channel = InProcessChannel(
            services: env.services() + [IntegrationServiceImpl(store: env.store, keys: env.keys, registry: registry)],
            interceptors: [env.interceptor])
        return Fixture(
            env: env, channel: channel, client: IntegrationService.Client(channel: channel),
            ingress: CarrierWebhookIngress(store: env.store, keys: env.keys, registry: registry))
    }

    static let twilioSID = "AC" + String(repeating: "0123456789abcdef", count: 2)
    static let twilioToken = "tw-auth-token-SECRET-9f8e7d"

    static func twilioRequest(name: String = "Twilio main") -> CreateCarrierConnectionRequest {
        var request = CreateCarrierConnectionRequest()
        request.carrier = "twilio"
        request.name = name
        request.credentials = ["account_sid": twilioSID, "auth_token": twilioToken]
        request.settings = ["base_url": "http://127.0.0.1:9"]
        return request
    }

    static func mockRequest(name: String = "Mock") -> CreateCarrierConnectionRequest {
        var request = CreateCarrierConnectionRequest()
        request.carrier = "mock"
        request.name = name
        request.credentials = ["api_key": "mock-api-key-SECRET-1234"]
        request.settings = ["seed": "7", "status_events": "false"]
        return request
    }

    static func bytes<M: ProtoMessage>(_ message: M) -> [UInt8] { message.withProtobufBytes { Array($0) } }

    static func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
        let n = Array(needle.utf8)
        guard haystack.count >= n.count else { return false }
        return (0...(haystack.count - n.count)).contains { Array(haystack[$0..<($0 + n.count)]) == n }
    }

    @Test func credentialsAreWriteOnlyAndSealed() async throws {
        let f = try await Self.fixture()
        let (org, email, password) = try await f.env.makeOrg(name: "Integrations CRUD")
        let options = bearer(try await f.env.login(email, password).accessToken)

        let created = try await f.client.createCarrierConnection(Self.twilioRequest(), options: options)
        #expect(created.carrier == "twilio")
        #expect(created.credentialHints == ["account_sid": "****cdef", "auth_token": "****8e7d"])
        #expect(created.webhookURLPath == "/webhooks/carriers/\(created.id)")
        #expect(!Self.contains(Self.bytes(created), Self.twilioToken))

        var get = GetCarrierConnectionRequest()
        get.connectionID = created.id
        let fetched = try await f.client.getCarrierConnection(get, options: options)
        #expect(fetched.name == "Twilio main" && fetched.settings["base_url"] == "http://127.0.0.1:9")
        #expect(!Self.contains(Self.bytes(fetched), Self.twilioToken))
        let list = try await f.client.listCarrierConnections(ListCarrierConnectionsRequest(), options: options)
        #expect(list.connections.map(\.id) == [created.id])
        #expect(!Self.contains(Self.bytes(list), Self.twilioToken))

        // Sealed at rest, and bound to its row.
        let sealed = try await f.env.store.withTransaction(tenant: org.orgID) { tx in
            try await tx.query("SELECT credentials_encrypted FROM carrier_connections WHERE id = \(UUIDText(created.id)!)").one().decode(
                0, as: [UInt8].self)
        }
        #expect(!Self.contains(sealed, Self.twilioToken) && !Self.contains(sealed, Self.twilioSID))
        let opened = try CarrierConnectionRecords.open(
            sealed, box: f.env.keys.sealedBox, orgID: org.orgID.description, connectionID: created.id)
        #expect(opened["auth_token"] == Self.twilioToken)
        #expect(
            throws: (any Error).self,
            performing: {
                try CarrierConnectionRecords.open(
                    sealed, box: f.env.keys.sealedBox, orgID: org.orgID.description, connectionID: UUID().uuidString.lowercased())
            })

        // Update: rename and replace credentials; the hint follows, the secret never shows.
        var update = UpdateCarrierConnectionRequest()
        update.connectionID = created.id
        update.name = "Twilio renamed"
        update.credentials = ["account_sid": Self.twilioSID, "auth_token": "another-SECRET-token-abcd"]
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["name", "credentials"]
        let updated = try await f.client.updateCarrierConnection(update, options: options)
        #expect(updated.name == "Twilio renamed" && updated.credentialHints["auth_token"] == "****abcd")
        #expect(!Self.contains(Self.bytes(updated), "another-SECRET-token-abcd"))
        update.updateMask?.paths = ["bogus"]
        #expect(await status { try await f.client.updateCarrierConnection(update, options: options) } == .invalidArgument)

        var bad = Self.twilioRequest(name: "No creds")
        bad.credentials = [:]
        #expect(await status { try await f.client.createCarrierConnection(bad, options: options) } == .invalidArgument)
        bad = Self.twilioRequest(name: "Bad carrier")
        bad.carrier = "../evil"
        #expect(await status { try await f.client.createCarrierConnection(bad, options: options) } == .invalidArgument)

        var delete = DeleteCarrierConnectionRequest()
        delete.connectionID = created.id
        _ = try await f.client.deleteCarrierConnection(delete, options: options)
        #expect(await status { try await f.client.getCarrierConnection(get, options: options) } == .notFound)
        #expect(await status { try await f.client.deleteCarrierConnection(delete, options: options) } == .notFound)
    }

    @Test func crossTenantConnectionIdsAreNotFound() async throws {
        let f = try await Self.fixture()
        let (_, emailA, passwordA) = try await f.env.makeOrg(name: "Integrations A")
        let (_, emailB, passwordB) = try await f.env.makeOrg(name: "Integrations B")
        let a = bearer(try await f.env.login(emailA, passwordA).accessToken)
        let b = bearer(try await f.env.login(emailB, passwordB).accessToken)
        let bConnection = try await f.client.createCarrierConnection(Self.mockRequest(), options: b)
        let id = bConnection.id

        var get = GetCarrierConnectionRequest()
        get.connectionID = id
        #expect(await status { try await f.client.getCarrierConnection(get, options: a) } == .notFound)
        var update = UpdateCarrierConnectionRequest()
        update.connectionID = id
        update.name = "Hijacked"
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["name"]
        #expect(await status { try await f.client.updateCarrierConnection(update, options: a) } == .notFound)
        var test = TestCarrierConnectionRequest()
        test.connectionID = id
        #expect(await status { try await f.client.testCarrierConnection(test, options: a) } == .notFound)
        var send = SendTestMessageRequest()
        send.connectionID = id
        send.from = "+15125550100"
        send.to = "+15125550111"
        send.body = "hello"
        #expect(await status { try await f.client.sendTestMessage(send, options: a) } == .notFound)
        var delete = DeleteCarrierConnectionRequest()
        delete.connectionID = id
        #expect(await status { try await f.client.deleteCarrierConnection(delete, options: a) } == .notFound)
        #expect(try await f.client.listCarrierConnections(ListCarrierConnectionsRequest(), options: a).connections.isEmpty)
        #expect(try await f.client.getCarrierConnection(get, options: b).name == "Mock")
    }

    @Test(
        .enabled(
            if: pluginsBuilt, "build the plugins first: swift build --build-tests builds ctower-carrier-mock/-twilio next to the tests"))
    func testAndSendThroughTheMockPlugin() async throws {
        let f = try await Self.fixture()
        let (_, email, password) = try await f.env.makeOrg(name: "Integrations mock")
        let options = bearer(try await f.env.login(email, password).accessToken)
        let connection = try await f.client.createCarrierConnection(Self.mockRequest(), options: options)

        var test = TestCarrierConnectionRequest()
        test.connectionID = connection.id
        let checked = try await f.client.testCarrierConnection(test, options: options)
        #expect(checked.ok, "\(checked.errorCode): \(checked.errorMessage)")
        #expect(checked.connection?.status == .active && checked.connection?.lastCheckTime != nil)

        var send = SendTestMessageRequest()
        send.connectionID = connection.id
        send.from = "+15125550100"
        send.to = "+15125550111"
        send.body = "Test from Control Tower"
        let sent = try await f.client.sendTestMessage(send, options: options)
        #expect(!sent.providerMessageID.isEmpty)
        send.to = "5125550111"
        #expect(await status { try await f.client.sendTestMessage(send, options: options) } == .invalidArgument)

        // The mock refuses api_key "invalid": the check reports AUTH and marks the connection.
        var update = UpdateCarrierConnectionRequest()
        update.connectionID = connection.id
        update.credentials = ["api_key": "invalid"]
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["credentials"]
        _ = try await f.client.updateCarrierConnection(update, options: options)
        let refused = try await f.client.testCarrierConnection(test, options: options)
        #expect(!refused.ok && refused.errorCode == "AUTH")
        #expect(refused.connection?.status == .error && refused.connection?.lastErrorCode == "AUTH")
    }

    static func formEncode(_ params: [(String, String)]) -> [UInt8] {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return Array(
            params.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&").utf8)
    }

    static func twilioSignature(url: String, params: [(String, String)], token: String) -> String {
        var data = Array(url.utf8)
        for (name, value) in params.sorted(by: { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }) {
            data += Array(name.utf8) + Array(value.utf8)
        }
        return Base64.encode(Crypto.hmacSHA1(key: Array(token.utf8), data: data))
    }

    @Test(
        .enabled(
            if: pluginsBuilt, "build the plugins first: swift build --build-tests builds ctower-carrier-mock/-twilio next to the tests"))
    func twilioWebhooksAreVerifiedStoredAndLogged() async throws {
        let f = try await Self.fixture()
        let (org, email, password) = try await f.env.makeOrg(name: "Integrations webhook")
        let options = bearer(try await f.env.login(email, password).accessToken)
        let connection = try await f.client.createCarrierConnection(Self.twilioRequest(), options: options)
        let path = connection.webhookURLPath
        let messageSID = "SM" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let params = [
            ("MessageSid", messageSID), ("SmsSid", messageSID), ("AccountSid", Self.twilioSID), ("From", "+15125550199"),
            ("To", "+15125550100"), ("Body", "Yes, still own it. Make an offer"), ("NumMedia", "0"),
        ]
        let url = "https://hooks.example.com\(path)"

        func post(signature: String) async throws -> HTTPResponse {
            let request = HTTPRequest(
                method: "POST", path: path,
                headers: [
                    ("host", "internal:7070"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "hooks.example.com"),
                    ("content-type", "application/x-www-form-urlencoded"), ("x-twilio-signature", signature),
                ], body: Self.formEncode(params))
            return try await f.ingress.route.handler(request)
        }
        func counts() async throws -> (messages: Int, logs: Int, verifiedLogs: Int) {
            try await f.env.store.withTransaction(tenant: org.orgID) { tx in
                let row = try await tx.query(
                    """
                    SELECT (SELECT count(*) FROM messages WHERE provider_message_id = \(messageSID)) AS m,
                           (SELECT count(*) FROM carrier_webhook_logs) AS l,
                           (SELECT count(*) FROM carrier_webhook_logs WHERE verified) AS v
                    """
                ).one()
                return (try row.decode("m", as: Int.self), try row.decode("l", as: Int.self), try row.decode("v", as: Int.self))
            }
        }

        let forged = try await post(signature: Self.twilioSignature(url: url, params: params, token: "wrong-token"))
        #expect(forged.status == 403)
        var now = try await counts()
        #expect(now.messages == 0 && now.logs == 1 && now.verifiedLogs == 0)

        let good = Self.twilioSignature(url: url, params: params, token: Self.twilioToken)
        let accepted = try await post(signature: good)
        #expect(accepted.status == 200)
        #expect(String(decoding: accepted.body, as: UTF8.self).contains("<Response"))
        // Twilio retries: the same message is stored once, every request is logged.
        #expect(try await post(signature: good).status == 200)
        now = try await counts()
        #expect(now.messages == 1 && now.logs == 3 && now.verifiedLogs == 2)

        let stored = try await f.env.store.withTransaction(tenant: org.orgID) { tx in
            try await tx.query(
                "SELECT direction, status, from_phone::text AS f, body FROM messages WHERE provider_message_id = \(messageSID)"
            ).one()
        }
        #expect(try stored.decode("direction", as: String.self) == "inbound")
        #expect(try stored.decode("f", as: String.self) == "+15125550199")
        #expect(try stored.decode("body", as: String.self) == "Yes, still own it. Make an offer")

        // The signature is logged only as a hash.
        let headers = try await f.env.store.withTransaction(tenant: org.orgID) { tx in
            try await tx.query("SELECT headers::text AS h FROM carrier_webhook_logs WHERE verified LIMIT 1").one().decode(
                "h", as: String.self)
        }
        #expect(!headers.contains(good) && headers.contains("redacted sha256:"))

        // Unknown connections are 404 and log nothing.
        let unknown = HTTPRequest(method: "POST", path: CarrierWebhookIngress.pathPrefix + UUID().uuidString.lowercased(), body: [])
        #expect(try await f.ingress.route.handler(unknown).status == 404)
    }
}
