import ArgumentParser
import Foundation
import Tower
import TowerProto
import TowerRPC
import TowerStandardServices

#if canImport(Glibc)
    import Glibc
#endif

/// `ctower login`: signs in and saves a profile the other verbs use.
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Sign in to a Control Tower server and save the session as a profile.",
        discussion: "The password is read from CTOWER_PASSWORD, or asked for on the terminal without echo.")

    @Option(help: "Server address, HOST:PORT.")
    var server = "127.0.0.1:7070"

    @Option(help: "Your email address.")
    var email: String

    @Option(help: "Profile name to save the session under.")
    var profile = "default"

    func run() async throws {
        guard let (host, port) = ListenAddress.parse(server) else { throw ValidationError("--server must be HOST:PORT") }
        let password = try Environment.value("CTOWER_PASSWORD") ?? Terminal.readSecret(prompt: "Password for \(email): ")
        let channel = HTTP2ClientChannel(host: host, port: port)
        defer { Task { await channel.close() } }
        var request = LoginRequest()
        request.email = email
        request.password = password
        var session: Session
        do {
            session = try await AuthService.Client(channel: channel).login(request, options: CallOptions(timeout: .seconds(15)))
        } catch let error as RPCError where error.message.contains("totp_code") {
            request.totpCode = try Terminal.readSecret(prompt: "Two-factor code: ")
            session = try await AuthService.Client(channel: channel).login(request, options: CallOptions(timeout: .seconds(15)))
        }
        let store = ProfileStore()
        try store.save(Profile(server: server, session: session, email: email), as: profile)
        print("Signed in as \(email) (org \(session.orgID)); profile \"\(profile)\" saved in \(store.path)")
    }
}

/// `ctower whoami`: who the saved profile is, and its role.
struct WhoAmICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Show who the saved profile signs in as.")

    @Option(help: "Profile name.")
    var profile = "default"

    func run() async throws {
        let store = ProfileStore()
        let saved = try store.load(profile)
        guard let (host, port) = ListenAddress.parse(saved.server) else {
            throw ValidationError("profile \(profile) has a bad server address")
        }
        let channel = HTTP2ClientChannel(host: host, port: port)
        defer { Task { await channel.close() } }
        let options = try await store.credentials(profile, channel: channel)
        let me = try await AuthService.Client(channel: channel).whoAmI(Google_Protobuf_Empty(), options: options)
        print("\(me.user?.email ?? "API key \(me.apiKey?.prefix ?? "")") in org \(me.orgID) as \(me.role.protoName ?? "?")")
    }
}

enum Terminal {
    /// Reads one line from the terminal with echo off (or from stdin when it is not a terminal).
    static func readSecret(prompt: String) throws -> String {
        FileHandle.standardError.write(Data(prompt.utf8))
        var saved = termios()
        let isTTY = isatty(0) == 1 && tcgetattr(0, &saved) == 0
        if isTTY {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(0, TCSAFLUSH, &quiet)
        }
        defer {
            if isTTY {
                tcsetattr(0, TCSAFLUSH, &saved)
                FileHandle.standardError.write(Data("\n".utf8))
            }
        }
        guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw ValidationError("no password given") }
        return line
    }
}
