import NIOCore
import Synchronization

/// Runs Swift tasks on a NIO `EventLoop` (a task executor over the loop) instead of Swift's global pool.
///
/// HTTP: each connection's request handling prefers its connection's loop (`AnnouncingHTTP1Channel.handle`). Without
/// it every request hops between threads several times (socket read on the loop, handler on the pool, query on the
/// database connection's loop, back to the pool, the response write on the loop again), and at moderate load each hop
/// wakes a sleeping thread: measured on 2 cores with 3 replicas behind nginx, remas spent ~330 µs of CPU per
/// `GET /node` this way against ~200 µs in one busy process. With `SERVER_THREADS=1` a replica does all of a request on
/// one thread. Handlers never block: bcrypt and SMTP run on thread pools, everything else awaits I/O.
///
/// Database: `ConnectionPool.withConnection` runs its body on the database connection's loop (see there why).
///
/// One executor per loop (`on(_:)`), so that a task already on a loop does not hop when it asks for that loop again.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let loop: any EventLoop

    private init(_ loop: any EventLoop) { self.loop = loop }

    private static let executors = Mutex<[ObjectIdentifier: EventLoopTaskExecutor]>([:])

    /// The executor of `loop` (the loops of a process are few and live as long as it does).
    static func on(_ loop: any EventLoop) -> EventLoopTaskExecutor {
        Self.executors.withLock { executors in
            let key = ObjectIdentifier(loop)
            if let executor = executors[key] { return executor }
            let executor = EventLoopTaskExecutor(loop)
            executors[key] = executor
            return executor
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = self.asUnownedTaskExecutor()
        self.loop.execute { job.runSynchronously(on: executor) }
    }
}
