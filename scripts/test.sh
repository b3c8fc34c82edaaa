#!/usr/bin/env bash
# Everything CI runs: unit and integration tests (Swift Testing) and the Autobahn conformance cases.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's wall time on stderr, so a slow run says where its minutes went.
step_started=$SECONDS
step_done() { echo "test.sh: $1 took $(( SECONDS - step_started )) s ($(( SECONDS / 60 )) min in all)" >&2; step_started=$SECONDS; }

# libnghttp2 is the HTTP/2 engine (a system library target; pkg-config finds it); zlib serves compress-nio.
# Test peers: nghttp, Chromium, openssl (certificates), mosquitto and node-ws (MQTT over WebSocket),
# noVNC and TigerVNC (the browser VNC console end to end).
scripts/install-packages.sh libnghttp2-dev zlib1g-dev libcrypt-dev pkg-config nghttp2-client chromium openssl mosquitto node-ws novnc tigervnc-standalone-server

scripts/setup-python.sh
step_done "packages and Python venv"
# The integration tests start the built `wsgate` executable, so build everything first.
swift build
step_done "swift build"
# Swift Testing captures a backtrace at every `throw` in the process while tests run; compress-nio
# throws on every full output buffer, so the in-process gateways' inflation (and the tests' own)
# spent seconds of the few threads all async tests share in backtraces: other tests' connections
# then idled into their gateway's timeouts. A failing test still reports its error.
export SWT_SWIFT_ERROR_BACKTRACING_ENABLED=0
# At most 16 tests at a time (Swift Testing otherwise sets no bound): the integration suites run the
# gateway in this process, and its handshakes that wait on the Swift concurrency pool (JWT checks,
# auth call-outs) starved beside a CPU hog when the whole suite shared it. Swift Testing's knob is
# experimental: a toolchain without it ignores the variable.
SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=${SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH:-16} \
  swift test 2>&1 | tee .build/test-output.txt
grep -q "Test run with [1-9][0-9]* tests.* passed" .build/test-output.txt || { echo "test.sh: swift test did not report a passing run" >&2; exit 1; }
step_done "swift test"

# Every seed and every past crash of the fuzz targets still parses without crashing (plain build:
# replay only; scripts/fuzz.sh TARGET SECONDS fuzzes for real).
for target in handshake frames config proxy-protocol; do
    .build/debug/wsgate-fuzz "$target" "Tests/fuzz-corpus/$target"
done
step_done "fuzz corpus replay"

# The load generator still works (a short run of every workload on the debug build; figures from
# a debug build mean nothing, a FAILED row fails the run).
.build/debug/wsgate-bench --duration 0.5 --sizes 64,4096 --idle-connections 200 --rate 500 --paths ws,tcp,lines,h2
step_done "wsgate-bench smoke run"

# The chaos soak, briefly (scripts/chaos-soak.sh; `make chaos` runs it for minutes on a release
# build): misbehaving clients and backends on every kind of route and front, well-behaved sessions
# checked byte for byte beside them, then descriptors and memory once the load stops. The debug
# build gets 5 s per well-behaved handshake where the release soak allows 1 s: its BoringSSL is
# compiled without optimisation, and a wss session makes two TLS handshakes; with both cores busy
# beside the run (stress-ng), one such handshake took 2.03 s of a 2 s bound. The bound is there to
# catch a wedged gateway, which never answers at all. The three floods that cost the gateway the
# most CPU (HPACK bombs, pings without reading, CONNECT+RST storms) are left to `make chaos` and
# ExhaustionTests: on the debug build beside them one well-behaved TLS handshake in 176 took 2.3 s.
scripts/chaos-soak.sh --debug --rounds 1 --duration 20 --max-handshake 5 --exclude hpack_bomb,ping_flood_no_read,h2_connect_reset_storm
step_done "chaos soak"

# The Dockerfile (hadolint), the Kubernetes manifests (kubernetes-validate) and the ConfigMap's
# configuration (wsgate check).
scripts/check-deployment-files.sh
step_done "deployment files"

# The container image: built with podman from local base images, run, drained (skipped, saying
# why, only where podman cannot run). The binary inside is a debug build: the image's layout, user,
# signals and drain are what is checked here, not the optimiser.
SWIFT_CONFIGURATION=debug scripts/container-test.sh
step_done "container image"

# Autobahn TestSuite 1–13 (12/13: permessage-deflate). Every case but the big messages (cases 10–18:
# 4–128 KiB, 1,000 each) of 12.2–12.5 and 13.2–13.7, which repeat 12.1's and 13.1's sizes with
# other payloads and deflate parameters: on a release build they took 530 of the 785 s of the cases
# make test ran before (all but 12.3–12.5); on the debug build that run took 17 minutes of CI, this
# one 7. `make conformance` runs every case.
big_repeats=()
for group in 12.2 12.3 12.4 12.5 13.2 13.3 13.4 13.5 13.6 13.7; do
  for size in 10 11 12 13 14 15 16 17 18; do big_repeats+=(-x "$group.$size"); done
done
scripts/conformance.sh "${big_repeats[@]}"
step_done "conformance"
# Over TLS (HTTP/1.1 after ALPN, through a verifying TLS tunnel): 1–8, 9.1–9.2, 10 and the first
# group of 12 and 13 (9.3–9.8 are the plain run's fragmentation and chopping at volume, the rest of
# 12/13 repeat with other payloads and deflate parameters; Chromium covers permessage-deflate over
# TLS with HTTP/2). `make conformance` / `scripts/conformance.sh --tls` run all.
scripts/conformance.sh --tls -x '9.3.*' -x '9.4.*' -x '9.5.*' -x '9.6.*' -x '9.7.*' -x '9.8.*' \
    -x '12.2.*' -x '12.3.*' -x '12.4.*' -x '12.5.*' -x '13.2.*' -x '13.3.*' -x '13.4.*' -x '13.5.*' -x '13.6.*' -x '13.7.*'
step_done "conformance over TLS"
# With permessage-deflate on the backend hop as well (the echo backend agrees to it): messages up
# to 1 MiB (9.1.1–9.1.3; the 4–16 MiB ones take minutes here) and the first groups of 12 and 13.
scripts/conformance.sh --backend-compression -i '9.1.1' -i '9.1.2' -i '9.1.3' -i '12.1.*' -i '13.1.*'
step_done "conformance with backend compression"
