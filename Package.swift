// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "wsgate",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "WSGate", targets: ["WSGate"]),
        .executable(name: "wsgate", targets: ["wsgate"]),
        .executable(name: "wsgate-demo-backend", targets: ["wsgate-demo-backend"]),
        .executable(name: "wsgate-bench", targets: ["wsgate-bench"]),
        .executable(name: "wsgate-fuzz", targets: ["wsgate-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.15.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // auth.http: the per-handshake call-out to an authorisation service (pooled, TLS, timeouts).
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // Tests only: child processes (Foundation's Process.run can crash the test process, see
        // Tests/IntegrationTests/ChildProcess.swift).
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
    ],
    targets: [
        // libnghttp2 (Debian: libnghttp2-dev) behind a shim that hides its API versions.
        .systemLibrary(
            name: "CNghttp2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"]), .brew(["nghttp2"])]
        ),
        // libcrypt (libxcrypt: bcrypt and SHA-crypt) for htpasswd files; part of every glibc toolchain.
        .systemLibrary(name: "CCrypt", providers: [.apt(["libcrypt-dev"])]),
        .target(
            name: "WSGate",
            dependencies: [
                "CNghttp2",
                "CCrypt",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            // Release builds keep Swift's run-time exclusivity checks: turning them off is only
            // worth it with a benchmark in BENCHMARKS.md that shows what it buys.
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "wsgate",
            dependencies: [
                "WSGate",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "wsgate-demo-backend",
            dependencies: [
                "DemoBackends",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The project's own load generator: the shared harness's workloads against a wsgate it starts.
        .executableTarget(
            name: "wsgate-bench",
            dependencies: [
                "WSGate",
                "DemoBackends",
                "CNghttp2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                "ChildProcesses",
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Child processes without Foundation's Process (see ChildProcess.swift): the bench's gateway, the tests' peers.
        .target(
            name: "ChildProcesses",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // libFuzzer entry (scripts/fuzz.sh builds it instrumented; plain builds replay a corpus).
        .target(name: "CFuzzerDriver"),
        .executableTarget(
            name: "wsgate-fuzz",
            dependencies: ["WSGate", "CFuzzerDriver"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Small reference services (NIO's own WebSocket stack, not wsgate's) used by the demo and the tests.
        .target(
            name: "DemoBackends",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "WSGateTests",
            dependencies: [
                "WSGate",
                "CNghttp2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "WSGate",
                "DemoBackends",
                "CNghttp2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                "ChildProcesses",
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
