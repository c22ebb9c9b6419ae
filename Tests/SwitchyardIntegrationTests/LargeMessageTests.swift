// Large rows and long COPY streams pass through without being buffered whole.
import Foundation
import SwitchyardTestSupport
import Testing

@Suite("Large messages stream through", .serialized)
struct LargeMessageTests {
    /// Peak resident memory of a process, from /proc.
    static func peakRSSKiB(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        }
        return -1
    }

    @Test("a 100 MB DataRow and a 300 MB COPY pass through the switchyard binary with bounded memory")
    func largeRowAndCopy() throws {
        let cluster = try PostgresCluster.shared()
        let port = freeTCPPort()
        let proxy = try ChildProcess.start(
            executable: try switchyardBinaryPath,
            arguments: ["serve", "--listen", "127.0.0.1:\(port)", "--upstream", "postgresql://switchyard@127.0.0.1:\(cluster.port)/postgres", "--admin-listen", "off"])
        defer { _ = proxy.terminate() }
        try waitForTCPPort(port, timeout: .seconds(20))
        let conninfo = "host=127.0.0.1 port=\(port) user=postgres dbname=postgres sslmode=disable"
        let conn = try PQConnection(conninfo)
        let baseline = Self.peakRSSKiB(proxy.pid)

        let lengths = try conn.valueLengths("select repeat('x', 100 * 1024 * 1024)")
        #expect(lengths == [100 * 1024 * 1024])

        _ = try cluster.psql("drop table if exists big_copy; create table big_copy (line text)")
        // 300 MB of COPY data from the client side, streamed by psql from a program.
        let copy = try runProcess("/usr/bin/psql", [
            "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-d", "postgres",
            "-c", "\\copy big_copy from program 'yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789 | head -n 3000000'",
        ], timeout: .seconds(300))
        #expect(copy.status == 0, "\(copy.stderr)")
        #expect(try cluster.psql("select count(*), sum(length(line)) from big_copy") == "3000000|300000000")
        _ = try cluster.psql("drop table big_copy")

        let peak = Self.peakRSSKiB(proxy.pid)
        // Far below the 100 MB row or the 300 MB stream: nothing was held whole.
        #expect(peak - baseline < 48 * 1024, "peak RSS grew from \(baseline) KiB to \(peak) KiB")
    }
}
