import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import TowerRPC

/// A throwaway CA, a server certificate it signed (localhost, 127.0.0.1) and an unrelated CA,
/// made with the `openssl` command in a temporary directory once per test process.
struct TestCertificates: Sendable {
    let directory: String
    var caPath: String { directory + "/ca.pem" }
    var otherCAPath: String { directory + "/other-ca.pem" }
    var serverCertificatePath: String { directory + "/server.pem" }
    var serverKeyPath: String { directory + "/server.key" }

    static let shared: TestCertificates = {
        let directory = NSTemporaryDirectory() + "ctower-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        let caExtensions = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
        for name in ["ca", "other-ca"] {
            run(
                ["req", "-x509"] + ec + ["-keyout", "\(name).key", "-out", "\(name).pem", "-days", "2", "-subj", "/CN=ctower test \(name)"]
                    + caExtensions, in: directory)
        }
        run(["req"] + ec + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"], in: directory)
        try! """
        subjectAltName=DNS:localhost,IP:127.0.0.1
        basicConstraints=CA:FALSE
        keyUsage=critical,digitalSignature
        extendedKeyUsage=serverAuth
        """.write(toFile: directory + "/server.ext", atomically: true, encoding: .utf8)
        run(
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
                "-days", "2", "-extfile", "server.ext",
            ], in: directory)
        return certificates
    }()

    private static func run(_ arguments: [String], in directory: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try! process.run()
        process.waitUntilExit()
        precondition(process.terminationStatus == 0, "openssl \(arguments.joined(separator: " ")) failed")
    }

    var serverTLS: RPCServer.TLSConfiguration {
        RPCServer.TLSConfiguration(certificateChainPath: serverCertificatePath, privateKeyPath: serverKeyPath)
    }
}

/// Runs `body` with a TLS server and a TLS client that trusts the test CA.
func withTLSServer(
    clientTLS: HTTP2ClientChannel.TLSConfiguration? = nil, host: String = "127.0.0.1",
    configure: (inout RPCServer.Configuration) -> Void = { _ in }, _ body: (HTTP2ClientChannel, Int) async throws -> Void
) async throws {
    let certificates = TestCertificates.shared
    var configuration = RPCServer.Configuration(host: "127.0.0.1", port: 0, tls: certificates.serverTLS)
    configure(&configuration)
    let server = RPCServer(configuration: configuration, services: [EchoService(probe: Probe())])
    let port = try await server.start().port!
    let tls = clientTLS ?? HTTP2ClientChannel.TLSConfiguration(trustRootsPath: certificates.caPath, serverName: "localhost")
    let client = HTTP2ClientChannel(host: host, port: port, configuration: .init(tls: tls))
    do {
        try await body(client, port)
    } catch {
        await client.close()
        await server.shutdown(gracePeriod: .seconds(1))
        throw error
    }
    await client.close()
    await server.shutdown(gracePeriod: .seconds(1))
}

@Suite struct TLSTests {
    @Test func unaryStreamingAndBidiOverTLS() async throws {
        try await withTLSServer { client, _ in
            let response: Blob = try await client.unary(Echo.unary, Blob("hello over tls"), options: .default)
            #expect(response.text == "hello over tls")
            let big: Blob = try await client.unary(Echo.big, Blob("300000"), options: .default)
            #expect(big.bytes.count == 300_000)
            let parts = try await client.serverStreaming(Echo.expand, Blob("a b c"), options: .default) {
                (responses: ClientResponseStream<Blob>) in
                var texts: [String] = []
                for try await part in responses { texts.append(part.text) }
                return texts
            }
            #expect(parts == ["a", "b", "c"])
            let replies = try await client.bidiStreaming(Echo.chat, options: .default) {
                (writer: ClientRequestWriter<Blob>, responses: ClientResponseStream<Blob>) in
                var iterator = responses.makeAsyncIterator()
                var replies: [String] = []
                for text in ["ping1", "ping2"] {
                    try await writer.write(Blob(text))
                    replies.append(try #require(try await iterator.next()).text)
                }
                writer.finish()
                #expect(try await iterator.next() == nil)
                return replies
            }
            #expect(replies == ["echo:ping1", "echo:ping2"])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        let response: Blob = try await client.unary(Echo.unary, Blob("n\(index)"), options: .default)
                        #expect(response.text == "n\(index)")
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func clientUsesTheChannelHostAsServerNameAndChecksIPAddresses() async throws {
        // No serverName: "127.0.0.1" is verified against the certificate's IP SAN.
        let tls = HTTP2ClientChannel.TLSConfiguration(trustRootsPath: TestCertificates.shared.caPath)
        try await withTLSServer(clientTLS: tls) { client, _ in
            let response: Blob = try await client.unary(Echo.unary, Blob("by ip"), options: .default)
            #expect(response.text == "by ip")
        }
    }

    @Test func untrustedCertificateIsRefused() async throws {
        let tls = HTTP2ClientChannel.TLSConfiguration(trustRootsPath: TestCertificates.shared.otherCAPath, serverName: "localhost")
        try await withTLSServer(clientTLS: tls) { client, _ in
            let error = await expectRPCError(.unavailable) {
                let _: Blob = try await client.unary(Echo.unary, Blob("x"), options: .default)
            }
            #expect(error?.message.contains("verification failed") == true, "\(String(describing: error))")
        }
    }

    @Test func wrongHostNameIsRefused() async throws {
        let tls = HTTP2ClientChannel.TLSConfiguration(trustRootsPath: TestCertificates.shared.caPath, serverName: "not-the-server.example")
        try await withTLSServer(clientTLS: tls) { client, _ in
            let error = await expectRPCError(.unavailable) {
                let _: Blob = try await client.unary(Echo.unary, Blob("x"), options: .default)
            }
            #expect(error?.message.contains("verification failed") == true, "\(String(describing: error))")
        }
    }

    @Test func cleartextClientAgainstTLSServerFailsAndServerKeepsServing() async throws {
        try await withTLSServer { client, port in
            let cleartext = HTTP2ClientChannel(host: "127.0.0.1", port: port, configuration: .init(connectTimeout: .seconds(2)))
            _ = await expectRPCError(.unavailable) {
                let _: Blob = try await cleartext.unary(Echo.unary, Blob("x"), options: CallOptions(timeout: .seconds(5)))
            }
            await cleartext.close()
            let response: Blob = try await client.unary(Echo.unary, Blob("still ok"), options: .default)
            #expect(response.text == "still ok")
        }
    }

    @Test func silentConnectionIsClosedAfterHandshakeTimeout() async throws {
        // Short enough to keep the test quick, long enough that the real client's own handshake
        // (which the same limit covers) completes on a loaded machine.
        try await withTLSServer(configure: { $0.limits.handshakeTimeout = .seconds(1) }) { client, port in
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port)
                .get()
            try await channel.closeFuture.get()
            let response: Blob = try await client.unary(Echo.unary, Blob("ok"), options: .default)
            #expect(response.text == "ok")
        }
    }

    @Test func missingCertificateFileFailsStart() async throws {
        let configuration = RPCServer.Configuration(
            host: "127.0.0.1", port: 0,
            tls: .init(certificateChainPath: "/nonexistent/cert.pem", privateKeyPath: TestCertificates.shared.serverKeyPath))
        let server = RPCServer(configuration: configuration, services: [])
        let error = await expectRPCError(.failedPrecondition) { try await server.start() }
        #expect(error?.message.contains("/nonexistent/cert.pem") == true)
        await server.shutdown(gracePeriod: .seconds(1))
    }

    @Test func alpnSelection() throws {
        #expect(TLSContext.isIPAddress("127.0.0.1"))
        #expect(TLSContext.isIPAddress("::1"))
        #expect(!TLSContext.isIPAddress("localhost"))
    }
}
