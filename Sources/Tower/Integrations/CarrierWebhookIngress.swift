import Foundation
import Logging
import TowerCarrierHost
import TowerCrypto
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

/// `POST /webhooks/carriers/{connection_id}`: carriers' status callbacks and inbound messages.
/// The connection's plugin verifies the signature and normalises the events; unverified
/// requests are answered 403 and nothing from them is stored. Every request for an existing
/// connection is logged in `carrier_webhook_logs`, with secret-bearing headers reduced to a hash.
public struct CarrierWebhookIngress: Sendable {
    public static let pathPrefix = "/webhooks/carriers/"

    let store: Store
    let box: SealedBox
    let registry: CarrierRegistry
    let logger: Logger

    public init(store: Store, keys: KeyRing, registry: CarrierRegistry, logger: Logger = Logger(label: "ctower.webhooks")) {
        self.store = store
        self.box = keys.sealedBox
        self.registry = registry
        self.logger = logger
    }

    public var route: HTTPRoute {
        HTTPRoute(method: "POST", pathPrefix: Self.pathPrefix) { request in try await handle(request) }
    }

    /// Header names whose values are secrets or signatures: logged only as a hash.
    static func isSecretHeader(_ name: String) -> Bool {
        let name = name.lowercased()
        return ["authorization", "proxy-authorization", "cookie", "set-cookie"].contains(name) || name.contains("signature")
            || name.contains("token") || name.contains("secret") || name.contains("api-key")
    }

    static func redactedHeaders(_ headers: [(name: String, value: String)]) -> String {
        JSONValue.array(
            headers.map { header in
                let value = isSecretHeader(header.name) ? "redacted sha256:" + Crypto.hex(Crypto.sha256(header.value)) : header.value
                return .object([("name", .string(header.name)), ("value", .string(value))])
            }
        ).serialized()
    }

    /// The URL as the carrier called it: behind a proxy the forwarded scheme and host, else the
    /// Host header over plain HTTP.
    static func externalURL(_ request: HTTPRequest) -> String {
        let scheme = request.header("x-forwarded-proto").flatMap { $0.split(separator: ",").first }.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        let host = request.header("x-forwarded-host").flatMap { $0.split(separator: ",").first }.map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        let query = request.query.isEmpty ? "" : "?" + request.query
        return "\(scheme ?? "http")://\(host ?? request.header("host") ?? "localhost")\(request.path)\(query)"
    }

    func handle(_ request: HTTPRequest) async throws -> HTTPResponse {
        let idText = String(request.path.dropFirst(Self.pathPrefix.count)).lowercased()
        guard let connectionID = UUIDText(idText) else { return .text(404, "no such carrier connection\n") }
        // No tenant is known yet: a SECURITY DEFINER function names the connection's org.
        let orgText = try await store.withTransaction(tenant: nil, readOnly: true) { tx in
            try await tx.query("SELECT ctower_carrier_connection_org(\(connectionID))::text AS org_id").one().decode(
                "org_id", as: String?.self)
        }
        guard let orgText, let orgID = OrgID(orgText), let org = UUIDText(orgText) else {
            return .text(404, "no such carrier connection\n")
        }
        let box = box
        let connection = try await store.withTransaction(tenant: orgID, readOnly: true) { tx in
            try await CarrierConnectionRecords.resolve(tx, id: connectionID, box: box)
        }
        guard let connection else { return .text(404, "no such carrier connection\n") }

        var parse = Carrier_ParseWebhookRequest()
        parse.method = request.method
        parse.url = Self.externalURL(request)
        parse.headers = request.headers.map {
            var h = Carrier_Header()
            h.name = $0.name
            h.value = $0.value
            return h
        }
        parse.body = request.body

        let verdict: Carrier_ParseWebhookResponse
        do {
            let host = try await registry.prepare(connection)
            verdict = try await host.parseWebhook(parse, connection: connection.id)
        } catch {
            let code = (error as? CarrierError)?.code.name ?? "internal"
            logger.warning("carrier webhook not processed", metadata: ["connection": "\(connection.id)", "error": "\(code)"])
            // 503 makes the carrier retry later; nothing but the log is stored.
            try await log(
                request, url: parse.url, org: org, orgID: orgID, connectionID: connectionID, verified: false, status: 503, events: 0,
                error: code)
            return .text(503, "carrier plugin unavailable; retry later\n")
        }

        guard verdict.verified else {
            try await log(
                request, url: parse.url, org: org, orgID: orgID, connectionID: connectionID, verified: false, status: 403, events: 0,
                error: nil)
            return .text(403, "webhook signature did not verify\n")
        }
        let status = verdict.httpStatus == 0 ? 200 : Int(verdict.httpStatus)
        let recorded = try await store.withTransaction(tenant: orgID) { tx in
            let recorded = try await CarrierEventRecorder.record(verdict.events, orgID: org, connectionID: connectionID, tx: tx)
            try await Self.insertLog(
                tx, request, url: parse.url, org: org, connectionID: connectionID, verified: true, status: status, events: recorded.stored,
                error: nil)
            return recorded
        }
        // Parked statuses are kept either way; this only saves them the sweep's wait.
        do {
            try await CarrierEventRecorder.applyParked(
                providerIDs: recorded.parkedProviderIDs, orgID: orgID, connectionID: connectionID, store: store)
        } catch {
            logger.notice("applying a parked status right away failed; the upkeep sweep will", metadata: ["error": "\(type(of: error))"])
        }
        if verdict.httpContentType.isEmpty && verdict.httpBody.isEmpty {
            return HTTPResponse(status: status, headers: [("content-type", "text/xml")], body: Array("<Response/>".utf8))
        }
        return HTTPResponse(status: status, headers: [("content-type", verdict.httpContentType)], body: verdict.httpBody)
    }

    private func log(
        _ request: HTTPRequest, url: String, org: UUIDText, orgID: OrgID, connectionID: UUIDText, verified: Bool, status: Int, events: Int,
        error: String?
    ) async throws {
        try await store.withTransaction(tenant: orgID) { tx in
            try await Self.insertLog(
                tx, request, url: url, org: org, connectionID: connectionID, verified: verified, status: status, events: events,
                error: error)
        }
    }

    static func insertLog(
        _ tx: Transaction, _ request: HTTPRequest, url: String, org: UUIDText, connectionID: UUIDText, verified: Bool, status: Int,
        events: Int, error: String?
    ) async throws {
        try await tx.execute(
            """
            INSERT INTO carrier_webhook_logs (org_id, carrier_connection_id, method, url, headers, body, body_sha256, verified,
                                              response_status, event_count, error)
            VALUES (\(org), \(connectionID), \(request.method), \(url), \(redactedHeaders(request.headers))::jsonb, \(request.body),
                    \(Crypto.sha256(request.body)), \(verified), \(status), \(events), \(error))
            """)
    }

    /// Stores an event a plugin sent on its own (the mock carrier's statuses and replies); false
    /// when it could not be stored and should come again. An event for an unknown (deleted)
    /// connection counts as handled.
    static func recordUnsolicited(_ event: CarrierEvent, store: Store, logger: Logger) async -> Bool {
        guard let connectionID = UUIDText(event.connectionID) else { return true }
        var proto = Carrier_Event()
        proto.connectionID = event.connectionID
        switch event.kind {
        case .deliveryStatus(let status): proto.kind = .deliveryStatus(status)
        case .inboundMessage(let message): proto.kind = .inboundMessage(message)
        case .throttle: return true
        }
        let recorded: CarrierEventRecorder.Recorded
        let orgID: OrgID
        do {
            let orgText = try await store.withTransaction(tenant: nil, readOnly: true) { tx in
                try await tx.query("SELECT ctower_carrier_connection_org(\(connectionID))::text AS org_id").one().decode(
                    "org_id", as: String?.self)
            }
            guard let orgText, let found = OrgID(orgText), let org = UUIDText(orgText) else { return true }
            orgID = found
            recorded = try await store.withTransaction(tenant: orgID) { tx in
                try await CarrierEventRecorder.record([proto], orgID: org, connectionID: connectionID, tx: tx)
            }
        } catch {
            logger.error(
                "storing a carrier event failed; the plugin will deliver it again",
                metadata: ["connection": "\(event.connectionID)", "error": "\(type(of: error))"])
            return false
        }
        do {
            try await CarrierEventRecorder.applyParked(
                providerIDs: recorded.parkedProviderIDs, orgID: orgID, connectionID: connectionID, store: store)
        } catch {
            logger.notice("applying a parked status right away failed; the upkeep sweep will", metadata: ["error": "\(type(of: error))"])
        }
        return true
    }
}
