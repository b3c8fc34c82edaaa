#!/usr/bin/env bash
# Multi-core: wsgate with 1 and with 2 event-loop threads in one run of the shared harness, unpinned
# (the load generator and backends share the machine with it). Results: $BENCH_OUT (default
# .build/bench-scaling); scripts/publish-bench.sh adds them to BENCHMARKS.md.
#
# usage: scripts/bench-scaling.sh [run.py args...]
set -euo pipefail
cd "$(dirname "$0")/.."

src="${BENCH_DIR:-../shared/bench}"
[[ -f "$src/run.py" ]] || { echo "bench-scaling: no harness at $src (set BENCH_DIR)" >&2; exit 2; }
work="${BENCH_WORK:-/tmp/wsgate-bench-harness}"
out="${BENCH_OUT:-$PWD/.build/bench-scaling}"
rm -rf "$work"; cp -r "$src" "$work"; chmod -R u+w "$work"

scripts/install-packages.sh libnghttp2-dev zlib1g-dev pkg-config
scripts/build-release.sh --product wsgate >&2
bin="$(swift build -c release --show-bin-path)/wsgate"
(cd "$work" && ./setup.sh >&2)

common="--route /=ws://127.0.0.1:@WS_PORT@ --log-level warning"
cd "$work"
python3 run.py --out "$out" --no-pin --no-direct --modes throughput --only wsgate-1-thread,wsgate-2-threads \
  --target "wsgate-1-thread=$bin --listen 127.0.0.1:@PORT@ $common --threads 1;18110;ws" \
  --target "wsgate-2-threads=$bin --listen 127.0.0.1:@PORT@ $common --threads 2;18112;ws" \
  "$@"
