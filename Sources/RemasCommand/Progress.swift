import Foundation
import Synchronization

/// Progress of long work (`remas purge`, `remas import`) on standard error: on a terminal one line rewritten in place
/// (done of total, rate, time left, at most five times a second); otherwise one line per stage, and a last line.
final class ProgressOutput: Sendable {
    struct State {
        var stageStarted = Date()
        var lastDrawn = Date.distantPast
        var drawn = false
    }

    let interactive = isatty(STDERR_FILENO) != 0
    let unit: String
    let state = Mutex(State())

    init(unit: String) { self.unit = unit }

    func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

    /// A stage begins: its own line.
    func stage(_ text: String) {
        let clear = self.state.withLock { s -> Bool in
            defer {
                s.stageStarted = Date()
                s.drawn = false
            }
            return s.drawn
        }
        self.write((clear ? "\n" : "") + text + "\n")
    }

    func progress(done: Int, total: Int) {
        guard self.interactive else { return }
        let now = Date()
        let line = self.state.withLock { s -> String? in
            guard now.timeIntervalSince(s.lastDrawn) >= 0.2 || done >= total else { return nil }
            s.lastDrawn = now
            s.drawn = true
            return Self.line(done: done, total: total, unit: self.unit, seconds: now.timeIntervalSince(s.stageStarted))
        }
        if let line { self.write("\r\u{1B}[K" + line) }
    }

    /// A line shown in place on a terminal only (what is being done right now), never on a log.
    func transient(_ text: String) {
        guard self.interactive else { return }
        self.state.withLock { $0.drawn = true }
        self.write("\r\u{1B}[K" + text)
    }

    /// `  1200/5000 tasks (24 %), 830/s, 5 s left`
    static func line(done: Int, total: Int, unit: String, seconds: Double) -> String {
        let rate = seconds > 0 ? Double(done) / seconds : 0
        let percent = total > 0 ? 100 * done / total : 100
        var text = "  \(done)/\(total) \(unit) (\(percent) %), \(Int(rate.rounded()))/s"
        if done < total, rate > 0 { text += ", \(Self.duration(Double(total - done) / rate)) left" }
        return text
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded(.up))
        return s >= 3_600 ? "\(s / 3_600) h \(s % 3_600 / 60) min" : s >= 60 ? "\(s / 60) min \(s % 60) s" : "\(s) s"
    }

    /// The last line: what was done, in how long.
    func finish(_ text: String) {
        let clear = self.state.withLock { $0.drawn }
        self.write((clear ? "\n" : "") + text + "\n")
    }
}
