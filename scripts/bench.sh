#!/usr/bin/env bash
# Runs the shared load harness (../shared/bench: throughput, latency, connection rate, idle memory)
# with wsgate (release build) in one run:
#   scripts/bench.sh [run.py args...]            one event-loop thread, WS→WS and WS→TCP, beside nginx,
#                                                HAProxy and websockify (results: .build/bench)
#   scripts/bench.sh --exclusivity [run.py args...]  the release build against the same sources built
#                                                with -enforce-exclusivity=unchecked (.build/bench-exclusivity)
#   scripts/bench.sh --scaling [run.py args...]  1 and 2 threads, throughput only, unpinned (the load
#                                                side shares the machine; .build/bench-scaling) and
#                                                both pinned to the proxy's core (.build/bench-scaling-pinned)
# e.g. scripts/bench.sh --quick;  BENCH_DIR=/path/to/bench scripts/bench.sh --only haproxy,wsgate
# The harness directory is copied to a scratch dir (it builds its C tools in place); its setup.sh
# installs nginx, haproxy and websockify through apt. $BENCH_OUT overrides the results directory;
# scripts/publish-bench.sh turns both into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

scaling=0; exclusivity=0
if [[ ${1:-} == --scaling ]]; then scaling=1; shift; fi
if [[ ${1:-} == --exclusivity ]]; then exclusivity=1; shift; fi
src="${BENCH_DIR:-../shared/bench}"
[[ -f "$src/run.py" ]] || { echo "bench: no harness at $src (set BENCH_DIR)" >&2; exit 2; }
work="${BENCH_WORK:-/tmp/wsgate-bench-harness}"
suffix=""; [[ $scaling == 1 ]] && suffix=-scaling; [[ $exclusivity == 1 ]] && suffix=-exclusivity
out="${BENCH_OUT:-$PWD/.build/bench$suffix}"
rm -rf "$work"; cp -r "$src" "$work"; chmod -R u+w "$work"

scripts/install-packages.sh libnghttp2-dev zlib1g-dev libcrypt-dev pkg-config
scripts/build-release.sh --product wsgate >&2
bin="$(swift build -c release --show-bin-path)/wsgate"
if [[ $exclusivity == 1 ]]; then
  # The same sources without Swift's run-time exclusivity checks (in every module), in its own
  # scratch directory: what the checks cost, for the decision the release build's comment names.
  scratch="${UNCHECKED_SCRATCH:-$PWD/.build-unchecked}"
  swift build -c release --product wsgate --scratch-path "$scratch" -Xswiftc -enforce-exclusivity=unchecked >&2
  unchecked="$(swift build -c release --scratch-path "$scratch" --show-bin-path)/wsgate"
fi
(cd "$work" && ./setup.sh >&2)
git rev-parse --short HEAD > "$out.commit" 2>/dev/null || true

cd "$work"
if [[ $exclusivity == 1 ]]; then
  common="--route /=ws://127.0.0.1:@WS_PORT@ --threads 1 --log-level warning"
  exec python3 run.py --out "$out" --no-direct --modes throughput,latency --only wsgate-checked,wsgate-unchecked \
    --target "wsgate-checked=$bin --listen 127.0.0.1:@PORT@ $common;18110;ws" \
    --target "wsgate-unchecked=$unchecked --listen 127.0.0.1:@PORT@ $common;18113;ws" "$@"
fi
if [[ $scaling == 1 ]]; then
  common="--route /=ws://127.0.0.1:@WS_PORT@ --log-level warning"
  targets=(--target "wsgate-1-thread=$bin --listen 127.0.0.1:@PORT@ $common --threads 1;18110;ws"
           --target "wsgate-2-threads=$bin --listen 127.0.0.1:@PORT@ $common --threads 2;18112;ws")
  # Unpinned: the second thread can use what the load side leaves of the other core.
  python3 run.py --out "$out" --no-pin --no-direct --modes throughput --only wsgate-1-thread,wsgate-2-threads "${targets[@]}" "$@"
  # Pinned: both threads on the proxy's core, the load on the other. The CPU per echo with two
  # event loops against one is what a second loop costs (contention, cross-loop work); on 2 cores
  # nothing else can be both unshared with the load side and multi-core.
  exec python3 run.py --out "$out-pinned" --no-direct --modes throughput --only wsgate-1-thread,wsgate-2-threads "${targets[@]}" "$@"
fi
common="--threads 1 --log-level warning"
exec python3 run.py --out "$out" \
  --target "wsgate=$bin --listen 127.0.0.1:@PORT@ --route /=ws://127.0.0.1:@WS_PORT@ $common;18110;ws" \
  --target "wsgate-tcp=$bin --listen 127.0.0.1:@PORT@ --route /=tcp://127.0.0.1:@TCP_PORT@ $common;18111;tcp" \
  "$@"
