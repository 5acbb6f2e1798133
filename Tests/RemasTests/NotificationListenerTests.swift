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
                connection: t.configuration.connectionConfiguration, prefix: "remas_auth", table: "users", logger: t.logger)
            var stuck: [Int] = []
            var listened = 0
            for step in 0..<60 {
                let finished = Mutex(false)
                let heard = Mutex(false)
                let run = Task {
                    await listener.run(
                        isStopping: { false }, listening: { heard.withLock { $0 = true } }, lost: {}, received: { _ in })
                    finished.withLock { $0 = true }
                }
                // 0 to ~15 ms: before, during and after the connection, the channel query and the LISTEN.
                try await Task.sleep(for: .microseconds(250 * step))
                run.cancel()
                if !(try await CrashTests.waitUntil(timeout: 5) { finished.withLock { $0 } }) { stuck.append(step) }
                if heard.withLock({ $0 }) { listened += 1 }
            }
            #expect(stuck.isEmpty, "listener still running 5 s after its cancellation, at steps \(stuck)")
            // The later steps cancel a listener that is already listening: the loop covered that state too.
            #expect(listened > 0)
        }
    }
}
