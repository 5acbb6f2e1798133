import Foundation
import Synchronization
import Testing

@testable import Remas

/// The LISTEN loop shared by the scheduler and token revocation.
@Suite struct NotificationListenerTests {
    /// Cancelled at any moment of its setup (connecting, finding the channel, LISTEN, listening), the listener ends.
    /// It once did not when the cancellation met the setup after the connection was made: the service group waited
    /// for it forever after another service had failed (`remas serve` on a taken port stayed alive ~1 time in 6).
    @Test func endsWhenCancelledAtAnyPointOfItsSetup() async throws {
        try await withApp { t in
            let listener = NotificationListener(
                target: t.configuration.databaseTarget, prefix: "remas_auth", table: "users", logger: t.logger)
            // Cancels one run `delay` after its start (nil: once it listens); true if it ended within 5 s.
            func endsWhenCancelled(after delay: Duration?) async throws -> Bool {
                let finished = Mutex(false)
                let heard = Mutex(false)
                let run = Task {
                    await listener.run(
                        isStopping: { false }, listening: { heard.withLock { $0 = true } }, lost: {}, received: { _ in })
                    finished.withLock { $0 = true }
                }
                if let delay {
                    try await Task.sleep(for: delay)
                } else {
                    #expect(try await waitUntil(timeout: 10) { heard.withLock { $0 } }, "never listened")
                }
                run.cancel()
                return try await waitUntil(timeout: 5) { finished.withLock { $0 } }
            }
            // 0 to ~15 ms: before, during and after the connection, the channel query and the LISTEN (how far a run
            // gets in that time depends on the machine's load), then once while it listens.
            var stuck: [String] = []
            for step in 0..<60 {
                if !(try await endsWhenCancelled(after: .microseconds(250 * step))) { stuck.append("\(step)") }
            }
            if !(try await endsWhenCancelled(after: nil)) { stuck.append("listening") }
            #expect(stuck.isEmpty, "listener still running 5 s after its cancellation, at steps \(stuck)")
        }
    }
}
