import Foundation
import Testing
import Tower
import TowerProto

@Suite("CLI profiles")
struct ProfileStoreTests {
    @Test func savedProfilesArePrivateAndRoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/ctower-profile-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = ProfileStore(environment: ["XDG_CONFIG_HOME": dir])
        #expect(store.path == dir + "/ctower/profiles.json")
        #expect(throws: ProfileError.self) { try store.load("default") }
        var session = Session()
        session.accessToken = "ct1.a.b"
        session.refreshToken = "ctr_x"
        session.orgID = "org-1"
        try store.save(Profile(server: "127.0.0.1:7070", session: session, email: "a@example.com"), as: "default")
        try store.save(Profile(server: "10.0.0.1:7070", session: session, email: "b@example.com"), as: "staging")
        #expect(try store.load("default").email == "a@example.com")
        #expect(try store.all().keys.sorted() == ["default", "staging"])
        let mode = try FileManager.default.attributesOfItem(atPath: store.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        try Data("not json".utf8).write(to: URL(fileURLWithPath: store.path))
        #expect(throws: ProfileError.self) { try store.load("default") }
    }
}
