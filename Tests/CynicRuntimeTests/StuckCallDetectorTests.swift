@testable import CynicRuntime
import Testing

/// The watchdog's decisions, sample by sample, on virtual time: no threads, no sleeps.
@Suite("Stuck call detection")
struct StuckCallDetectorTests {
    let open = RunningCall(label: 3, callback: .connOpen)
    let data = RunningCall(label: 3, callback: .connData)

    func ms(_ value: Int) -> Duration { .milliseconds(value) }

    @Test("a call that stays put is reported once when it crosses the threshold, and once when it returns")
    func oneEpisode() {
        var detector = StuckCallDetector(threshold: ms(500))
        #expect(detector.observe(sequence: 1, running: open.word, now: ms(0)) == nil)
        #expect(detector.observe(sequence: 1, running: open.word, now: ms(125)) == nil)
        #expect(detector.observe(sequence: 1, running: open.word, now: ms(375)) == nil)
        #expect(detector.observe(sequence: 1, running: open.word, now: ms(500)) == .stuck(open, elapsed: ms(500)))
        // However many samples the episode spans: one line.
        for tick in 5...40 {
            #expect(detector.observe(sequence: 1, running: open.word, now: ms(tick * 125)) == nil)
        }
        #expect(detector.observe(sequence: 1, running: 0, now: ms(5125)) == .returned(open, elapsed: ms(5125)))
        #expect(detector.observe(sequence: 1, running: 0, now: ms(5250)) == nil)
    }

    @Test("calls that follow one another quickly are not one long call, however busy the thread")
    func busyIsNotStuck() {
        var detector = StuckCallDetector(threshold: ms(500))
        for tick in 0..<40 {
            #expect(detector.observe(sequence: UInt64(tick), running: data.word, now: ms(tick * 125)) == nil)
        }
    }

    @Test("a stuck call that returns while another starts between two samples ends its episode; the next starts its own clock")
    func replacedBetweenSamples() {
        var detector = StuckCallDetector(threshold: ms(500))
        _ = detector.observe(sequence: 7, running: open.word, now: ms(0))
        #expect(detector.observe(sequence: 7, running: open.word, now: ms(600)) == .stuck(open, elapsed: ms(600)))
        #expect(detector.observe(sequence: 8, running: data.word, now: ms(700)) == .returned(open, elapsed: ms(700)))
        #expect(detector.observe(sequence: 8, running: data.word, now: ms(1100)) == nil)
        #expect(detector.observe(sequence: 8, running: data.word, now: ms(1200)) == .stuck(data, elapsed: ms(500)))
        #expect(detector.current(now: ms(1300))?.call == data)
    }

    @Test("an idle thread and a call that never crossed the threshold say nothing")
    func quietWhenShort() {
        var detector = StuckCallDetector(threshold: ms(500))
        #expect(detector.observe(sequence: 0, running: 0, now: ms(0)) == nil)
        #expect(detector.observe(sequence: 1, running: open.word, now: ms(125)) == nil)
        #expect(detector.observe(sequence: 1, running: 0, now: ms(250)) == nil)
        #expect(detector.current(now: ms(300)) == nil)
    }

    @Test("the running word round-trips the label and the callback, and 0 is idle")
    func words() {
        let call = RunningCall(label: 123_456, callback: .shaperConnEnd)
        #expect(RunningCall(word: call.word) == call)
        #expect(RunningCall(word: 0) == nil)
    }

    @Test("labels are interned: the same plugin and service give the same number, and its text names both")
    func labels() {
        let registry = CallbackRegistry()
        let first = registry.label(plugin: "sleepy", service: "front")
        #expect(registry.label(plugin: "sleepy", service: "front") == first)
        #expect(registry.label(plugin: "sleepy", service: "back") != first)
        #expect(registry.describe(RunningCall(label: first, callback: .connOpen)) == "conn_open of plugin 'sleepy' (service front)")
    }
}
