#!/usr/bin/env bash
# Runs the shared load harness (../shared/bench: throughput, latency, connection rate, idle memory)
# with wsgate (release build, one event-loop thread) beside nginx, HAProxy and websockify, in one run.
#
# usage: scripts/bench.sh [run.py args...]     e.g. scripts/bench.sh --quick
#        BENCH_DIR=/path/to/bench scripts/bench.sh --only haproxy,wsgate,wsgate-tcp
# The harness directory is copied to a scratch dir (it builds its C tools in place); its setup.sh
# installs nginx, haproxy and websockify through apt. Results: $BENCH_OUT (default .build/bench).
set -euo pipefail
cd "$(dirname "$0")/.."

src="${BENCH_DIR:-../shared/bench}"
[[ -f "$src/run.py" ]] || { echo "bench: no harness at $src (set BENCH_DIR)" >&2; exit 2; }
work="${BENCH_WORK:-/tmp/wsgate-bench-harness}"
out="${BENCH_OUT:-$PWD/.build/bench}"
rm -rf "$work"; cp -r "$src" "$work"; chmod -R u+w "$work"

scripts/install-packages.sh libnghttp2-dev zlib1g-dev pkg-config
scripts/build-release.sh --product wsgate >&2
bin="$(swift build -c release --show-bin-path)/wsgate"
(cd "$work" && ./setup.sh >&2)

git rev-parse --short HEAD > "$out.commit" 2>/dev/null || true
common="--threads 1 --log-level warning"
cd "$work"
python3 run.py --out "$out" \
  --target "wsgate=$bin --listen 127.0.0.1:@PORT@ --route /=ws://127.0.0.1:@WS_PORT@ $common;18110;ws" \
  --target "wsgate-tcp=$bin --listen 127.0.0.1:@PORT@ --route /=tcp://127.0.0.1:@TCP_PORT@ $common;18111;tcp" \
  "$@"
