// CI's short fuzz pass: every libFuzzer target under Fuzz/ is built with the sanitizers and run a bounded number of times.
import SwitchyardTestSupport
import Testing

@Suite("Fuzz targets, short pass")
struct FuzzPassTests {
    static let runs = 2000

    /// The unoptimized build is the quicker one to make, and 2000 iterations take seconds even so.
    /// A toolchain without `-sanitize=fuzzer` fails the build, and so this test: it never skips.
    @Test("scripts/fuzz.sh builds the four targets and runs each without a crash, a hang or a broken invariant")
    func shortPass() throws {
        let result = try runProcess(
            "/bin/bash", ["\(packageRootDirectory)/scripts/fuzz.sh", "--debug", "--runs", "\(Self.runs)", "--seconds", "120"],
            timeout: .seconds(1200))
        #expect(result.status == 0, "fuzz.sh failed:\n\(result.stdout)\n\(result.stderr)")
        for target in ["frontend", "backend", "startup", "sql"] {
            // Every iteration ran: a target that stopped early proved less than it claims.
            #expect(result.stdout.contains("\n\(target): \(Self.runs) iterations"), "\(target) did not run \(Self.runs) times:\n\(result.stdout)")
        }
    }
}
