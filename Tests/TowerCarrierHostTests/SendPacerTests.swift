import Testing
import TowerProto

@testable import TowerCarrierHost

@Suite("Throttle pacing")
struct SendPacerTests {
    func throttle(mps: Double, seconds: Int64? = nil) -> Carrier_Throttle {
        var t = Carrier_Throttle()
        t.maxMps = mps
        if let seconds {
            var d = Google_Protobuf_Duration()
            d.seconds = seconds
            t.duration = d
        }
        return t
    }

    @Test func spacesSendsToTheRateAndOnlyOnThatConnection() {
        let pacer = SendPacer()
        let t0 = ContinuousClock.now
        pacer.apply(throttle(mps: 4), connection: "a", now: t0)
        #expect(pacer.delay(for: "a", now: t0) == nil)
        #expect(pacer.delay(for: "a", now: t0) == .milliseconds(250))
        #expect(pacer.delay(for: "a", now: t0 + .milliseconds(100)) == .milliseconds(150))
        #expect(pacer.delay(for: "a", now: t0 + .milliseconds(250)) == nil)
        #expect(pacer.delay(for: "b", now: t0) == nil)
    }

    @Test func pausesUntilTheDurationEnds() {
        let pacer = SendPacer()
        let t0 = ContinuousClock.now
        pacer.apply(throttle(mps: 0, seconds: 2), connection: "a", now: t0)
        #expect(pacer.delay(for: "a", now: t0) == SendPacer.pausePoll)
        #expect(pacer.delay(for: "a", now: t0 + .milliseconds(1950)) == .milliseconds(50))
        #expect(pacer.delay(for: "a", now: t0 + .seconds(2)) == nil)
        #expect(pacer.delay(for: "a", now: t0 + .seconds(2)) == nil)
    }

    @Test func anOpenEndedPauseLastsUntilTheNextThrottle() {
        let pacer = SendPacer()
        let t0 = ContinuousClock.now
        pacer.apply(throttle(mps: 0), connection: "a", now: t0)
        #expect(pacer.delay(for: "a", now: t0 + .seconds(3600)) == SendPacer.pausePoll)
        pacer.apply(throttle(mps: 100), connection: "a", now: t0 + .seconds(3600))
        #expect(pacer.delay(for: "a", now: t0 + .seconds(3600)) == nil)
    }
}
