// swift-tools-version:6.0
// Switchyard: a PostgreSQL wire-protocol proxy for provable, zero-downtime schema migrations.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // Release builds leave out the run-time checks of exclusive access (debug builds, and so the
    // tests, keep them; scripts/fuzz.sh turns them back on): a session is a class whose state
    // every message reads and changes, and the checks were a third of the passthrough's
    // instructions per statement and a fifth of the canary's (loadtests/instructions.sh).
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "switchyard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "switchyard", targets: ["switchyard"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C libraries and the few Linux calls Glibc's Swift module does not export.
        .target(name: "CShims"),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CPgQuery", providers: [.apt(["libpg-query-dev"])]),

        // Pure core: wire codecs, framing and the session state machine. No I/O.
        .target(name: "SwitchyardProtocol", swiftSettings: strict),
        // Pure core: the configuration model and its YAML loader.
        .target(
            name: "SwitchyardConfig",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        // Pure core: what each statement is and touches, on PostgreSQL's own parser (libpg_query).
        .target(name: "SwitchyardSQL", dependencies: ["CPgQuery"], swiftSettings: strict),
        // Pure core: feature-flag stages, sticky canary cohorts and read-routing plans.
        .target(name: "SwitchyardRouting", dependencies: ["SwitchyardSQL", "SwitchyardConfig"], swiftSettings: strict),
        // Pure core: backfill batch and verify checksum statements, pacing, and the verify descent plan.
        .target(name: "SwitchyardMigration", dependencies: ["SwitchyardConfig"], swiftSettings: strict),
        // Pure core: shadow reads: result comparison, noise calibration, sampling and divergence records.
        .target(name: "SwitchyardShadow", swiftSettings: strict),
        // I/O: sockets, TLS over them, the epoll event loops, signals.
        .target(
            name: "SwitchyardIO",
            dependencies: ["CShims", "COpenSSL", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // Server: client sessions, cancel routing, admin console, metrics, lifecycle.
        .target(
            name: "SwitchyardServer",
            dependencies: [
                "SwitchyardProtocol", "SwitchyardConfig", "SwitchyardIO", "SwitchyardRouting", "SwitchyardSQL", "SwitchyardMigration",
                "SwitchyardShadow", "COpenSSL", "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "switchyard",
            dependencies: [
                "SwitchyardServer", "SwitchyardConfig", "SwitchyardMigration", "SwitchyardIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // Test support: a real PostgreSQL cluster in a temporary directory, process helpers.
        .target(
            name: "SwitchyardTestSupport",
            dependencies: ["SwitchyardIO"],
            path: "Tests/SwitchyardTestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "SwitchyardProtocolTests", dependencies: ["SwitchyardProtocol", "SwitchyardTestSupport"], swiftSettings: strict),
        .testTarget(name: "SwitchyardConfigTests", dependencies: ["SwitchyardConfig"], swiftSettings: strict),
        .testTarget(name: "SwitchyardRoutingTests", dependencies: ["SwitchyardRouting", "SwitchyardTestSupport"], swiftSettings: strict),
        .testTarget(name: "SwitchyardMigrationTests", dependencies: ["SwitchyardMigration", "SwitchyardConfig"], swiftSettings: strict),
        .testTarget(name: "SwitchyardShadowTests", dependencies: ["SwitchyardShadow"], swiftSettings: strict),
        .testTarget(name: "SwitchyardSQLTests", dependencies: ["SwitchyardSQL", "SwitchyardTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "SwitchyardIntegrationTests",
            dependencies: ["SwitchyardServer", "SwitchyardTestSupport", "CLibPQ", "CPgQuery", "COpenSSL", "SwitchyardProtocol", "SwitchyardConfig",
                           "SwitchyardShadow"],
            swiftSettings: strict
        ),

        // Fuzzing (scripts/fuzz.sh builds these with -sanitize=fuzzer; a plain build replays inputs).
        .target(name: "FuzzSupport", dependencies: ["SwitchyardProtocol"], path: "Fuzz/FuzzSupport", swiftSettings: strict),
        .executableTarget(name: "FuzzFrontend", dependencies: ["FuzzSupport", "SwitchyardProtocol"], path: "Fuzz/FuzzFrontend", swiftSettings: strict),
        .executableTarget(
            name: "FuzzBackend", dependencies: ["FuzzSupport", "SwitchyardProtocol", "SwitchyardRouting"], path: "Fuzz/FuzzBackend", swiftSettings: strict
        ),
        .executableTarget(name: "FuzzStartup", dependencies: ["FuzzSupport", "SwitchyardProtocol"], path: "Fuzz/FuzzStartup", swiftSettings: strict),
        .executableTarget(
            name: "FuzzSQL",
            dependencies: ["FuzzSupport", "SwitchyardSQL", "SwitchyardRouting", "SwitchyardConfig", "CPgQuery"],
            path: "Fuzz/FuzzSQL",
            swiftSettings: strict
        ),
    ]
)
