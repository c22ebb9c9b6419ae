// Runs one fuzz target: under libFuzzer when built for fuzzing, else replays inputs or writes the seed corpus.
import Foundation

/// The checks of a fuzz target take the input bytes and stop the process (`violated`) when an
/// invariant breaks; a trap in the code under test stops it too. libFuzzer then keeps the input.
public typealias FuzzInput = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

#if SWITCHYARD_FUZZING
/// libFuzzer's own entry point for programs that keep their `main`. SwiftPM names the `main` of an
/// executable target after its module, which overrides the one libFuzzer would bring, so each
/// target's `@main` hands control over here. The arguments are plain pointers, passed alike by
/// Swift and C.
@_silgen_name("LLVMFuzzerRunDriver")
private func runLibFuzzer(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: FuzzInput
) -> CInt
#endif

public enum FuzzDriver {
    /// The body of a target's `main`. `--write-seeds DIR` writes `seeds`, the inputs the committed
    /// corpus starts from, one file each. Otherwise fuzzing builds (`-DSWITCHYARD_FUZZING
    /// -sanitize=fuzzer`) run libFuzzer with the command line, and plain builds take files or
    /// folders of inputs and run each through `input` (to replay a crash under the debugger).
    public static func main(input: FuzzInput, seeds: () -> [[UInt8]]) -> Never {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "--write-seeds", arguments.count == 2 {
            writeSeeds(seeds(), to: arguments[1])
            exit(0)
        }
        #if SWITCHYARD_FUZZING
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runLibFuzzer(&argc, &argv, input))
        #else
        guard !arguments.isEmpty, !arguments.contains(where: { $0.hasPrefix("-") }) else {
            print("usage: \(CommandLine.arguments[0]) FILE_OR_DIR... | --write-seeds DIR")
            print("(a plain build replays inputs; scripts/fuzz.sh builds the fuzzer)")
            exit(2)
        }
        var count = 0
        for path in arguments.flatMap(files(at:)) {
            guard let data = FileManager.default.contents(atPath: path) else {
                print("cannot read \(path)")
                exit(2)
            }
            let bytes = [UInt8](data)
            _ = bytes.withUnsafeBufferPointer { input($0.baseAddress, $0.count) }
            count += 1
        }
        print("replayed \(count) inputs, no failure")
        exit(0)
        #endif
    }

    /// The input as an array: libFuzzer may pass a null pointer for the empty input.
    public static func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
        guard let data, size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: size))
    }

    /// Stops the run on a broken invariant, saying which; libFuzzer records the input as a crash.
    public static func violated(_ what: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
        fatalError("fuzz invariant violated: \(what)", file: file, line: line)
    }

    private static func files(at path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.sorted().map { "\(path)/\($0)" }
    }

    /// Seed files are named by their index, so rewriting the corpus gives the same names.
    private static func writeSeeds(_ seeds: [[UInt8]], to directory: String) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for (index, seed) in seeds.enumerated() {
                try Data(seed).write(to: URL(fileURLWithPath: "\(directory)/seed-\(String(format: "%03d", index))"))
            }
            print("wrote \(seeds.count) seeds to \(directory)")
        } catch {
            print("cannot write seeds: \(error)")
            exit(1)
        }
    }
}
