// The documented example proxy-config/switchyard.yaml loads, sets every key, and matches the defaults.

import Foundation
import Testing
import SwitchyardConfig

@Suite("The example file and reading files")
struct ExampleFileTests {
    @Test("proxy-config/switchyard.yaml loads and holds the defaults")
    func exampleLoads() throws {
        let config = try ConfigLoader.load(path: Fixture.examplePath)
        let upstream = try UpstreamURI.parse("postgresql://switchyard@127.0.0.1:5432/postgres")
        #expect(config.upstream == upstream)
        // The example documents the defaults, so apart from the required upstream it changes nothing.
        #expect(config == SwitchyardConfiguration(upstream: upstream))
    }

    @Test("the example file sets every key it documents")
    func exampleHasEveryKey() throws {
        let text = try String(contentsOfFile: Fixture.examplePath, encoding: .utf8)
        let config = try ConfigLoader.parse(yaml: text)
        for (key, _) in config.summaryLines() {
            let parts = key.split(separator: ".")
            #expect(text.contains("\n\(parts[0]):"), "\(parts[0]) missing")
            if parts.count == 2 {
                #expect(text.contains("\n  \(parts[1]):"), "\(key) missing")
            }
        }
    }

    @Test("an unreadable file is an error under the key config")
    func unreadableFile() throws {
        let missing = "/nonexistent/switchyard-\(UInt64.random(in: 0...UInt64.max)).yaml"
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: missing) }
        #expect(error.key == "config")
        #expect(error.file == missing)
        #expect(error.line == nil)
        #expect(error.message.contains("No such file or directory"))

        let directory = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: NSTemporaryDirectory()) }
        #expect(directory.key == "config")
        #expect(directory.message.contains("it is a directory"))
    }

    @Test("errors in a loaded file carry its path")
    func fileErrorsCarryPath() throws {
        let path = NSTemporaryDirectory() + "switchyard-config-test-\(UInt64.random(in: 0...UInt64.max)).yaml"
        try "\(Fixture.upstreamLine)\nworkers: lots\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: path) }
        #expect(error.description == "\(path):2: workers: expected a whole number from 0 (one per CPU core) to 256, got \"lots\"")
    }

    @Test("a file that is not UTF-8 is refused")
    func notUTF8() throws {
        let path = NSTemporaryDirectory() + "switchyard-config-test-\(UInt64.random(in: 0...UInt64.max)).yaml"
        try Data([0x77, 0x3A, 0x20, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: path) }
        #expect(error.key == "config")
        #expect(error.message.contains("not valid UTF-8"))
    }
}
