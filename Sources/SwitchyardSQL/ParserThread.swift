// Runs libpg_query on a thread with a stack sized to the input, so deeply nested SQL cannot overflow the caller's stack.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// libpg_query's parser output, fingerprinting and normalisation recurse once per nesting level
/// of the parse tree, with frames of up to ~400 bytes, and nothing bounds the depth of
/// left-associative chains such as `1+1+1+…` or `a UNION b UNION …`: 100k chained operators
/// crash even an 8 MiB main thread. Event-loop threads may have far less. So any text that could
/// nest deeply runs on a fresh thread whose stack grows with the text.
enum ParserThread {
    /// Texts up to this size nest at most ~500 levels (every level costs at least two bytes of
    /// SQL, e.g. `+1`), ~200 KiB of stack: safe on any thread, so they run inline.
    static let inlineLimit = 1024

    /// Stack bytes reserved per byte of SQL: two bytes per nesting level at ~400 bytes a level,
    /// with margin. The reservation is virtual; only the pages touched are committed.
    static let stackBytesPerInputByte = 512
    static let minimumStack = 16 << 20
    static let maximumStack = 4 << 30

    static func stackSize(forInputBytes count: Int) -> Int {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: stackBytesPerInputByte)
        return overflow ? maximumStack : min(max(bytes, minimumStack), maximumStack)
    }

    /// Runs `body` inline for small inputs, otherwise on a dedicated thread and waits for it.
    /// Returns nil only if no such thread could be started.
    static func run<T>(inputBytes: Int, _ body: () -> T) -> T? {
        if inputBytes <= inlineLimit { return body() }
        return runOnNewThread(stackSize: stackSize(forInputBytes: inputBytes), body)
    }

    /// The closure handed to the thread; the caller blocks in `pthread_join` until it is done,
    /// which is what makes the unsynchronised result hand-over safe.
    private final class Job: @unchecked Sendable {
        let work: () -> Void
        init(_ work: @escaping () -> Void) { self.work = work }
    }

    static func runOnNewThread<T>(stackSize: Int, _ body: () -> T) -> T? {
        var result: T?
        withoutActuallyEscaping(body) { body in
            let job = Job { result = body() }
            var attributes = pthread_attr_t()
            guard pthread_attr_init(&attributes) == 0 else { return }
            defer { pthread_attr_destroy(&attributes) }
            guard pthread_attr_setstacksize(&attributes, stackSize) == 0 else { return }
            let context = Unmanaged.passRetained(job).toOpaque()
            #if canImport(Darwin)
            var thread: pthread_t?
            let status = pthread_create(&thread, &attributes, { raw in
                Unmanaged<Job>.fromOpaque(raw).takeRetainedValue().work()
                return nil
            }, context)
            guard status == 0, let thread else {
                Unmanaged<Job>.fromOpaque(context).release()
                return
            }
            #else
            var thread = pthread_t()
            let status = pthread_create(&thread, &attributes, { raw in
                if let raw { Unmanaged<Job>.fromOpaque(raw).takeRetainedValue().work() }
                return nil
            }, context)
            guard status == 0 else {
                Unmanaged<Job>.fromOpaque(context).release()
                return
            }
            #endif
            pthread_join(thread, nil)
        }
        return result
    }
}
