#!/usr/bin/env bash
# Writes BENCHMARKS.md from the last scripts/bench.sh run (.build/bench/results.md), with the machine,
# the versions and the date. Regenerate everything with: scripts/bench.sh && scripts/publish-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
results="${BENCH_OUT:-.build/bench}/results.md"
[[ -f "$results" ]] || { echo "publish-bench: no $results (run scripts/bench.sh first)" >&2; exit 2; }
bin="$(swift build -c release --show-bin-path)/wsgate"
{
  echo "# wsgate benchmarks"
  echo
  echo "Side by side with nginx, HAProxy and websockify in one run of the shared load harness"
  echo "(\`../shared/bench\`, every echo verified), produced by \`make bench-peers\` (scripts/bench.sh, bench.sh --scaling, publish-bench.sh)."
  echo "wsgate runs as a release build with one event-loop thread (\`--threads 1\`), like the peers' single worker."
  echo
  echo "- date: $(date -u +%Y-%m-%d) ($(stat -c %y "$results" | cut -d. -f1) UTC)"
  echo "- machine: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  commit="$(cat "${results%/results.md}.commit" 2>/dev/null || git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- wsgate $("$bin" --version 2>/dev/null) (commit $commit for the side-by-side run; the wsgate-bench section is from $(git rev-parse --short HEAD 2>/dev/null || echo unknown)), $(swift --version 2>/dev/null | head -1)"
  echo
  cat "$results"
  scaling="${BENCH_SCALING_OUT:-.build/bench-scaling}/results.md"
  if [[ -f "$scaling" ]]; then
    echo
    echo '## Multi-core: 1 and 2 event-loop threads (`scripts/bench.sh --scaling`)'
    echo
    echo "Unpinned: wsgate, the load generator and the backends share the $(nproc) cores, so on this machine a"
    echo "second thread can only take what the load side leaves (core use above 100% = both threads busy)."
    echo "What it shows: throughput rises with the second thread and the CPU per echo does not (no lock"
    echo "or cache-line contention between the loops)."
    echo
    sed -n '/^### Throughput/,/^### Proxy CPU cost/p' "$scaling" | sed '$d'
    sed -n '/^### Proxy CPU cost/,/^`@max`/p' "$scaling" | sed '$d'
  fi
  pinned="${BENCH_SCALING_OUT:-.build/bench-scaling}-pinned/results.md"
  if [[ -f "$pinned" ]]; then
    echo
    echo "### Both threads pinned to the proxy's core (the load side on the other)"
    echo
    echo "The load side never shares the proxy's core here, so the CPU per echo with two event loops"
    echo "against one is what a second loop costs (locks, cross-loop hand-offs, cache traffic); throughput"
    echo "cannot rise on one core."
    echo
    sed -n '/^### Proxy CPU cost/,/^`@max`/p' "$pinned" | sed '$d' | sed '1d'
  fi
  echo
  cat <<'TEXT'
### How the design scales to N cores

- `--threads N` (default: one per core) runs N event loops. A connection is accepted on the listener's
  loop and handed to the next loop round-robin (NIO's `ServerBootstrap`); its backend connection is
  opened on the same loop, so a session's two legs, its timers and its relay never cross threads.
- Nothing is shared per message: frames, masks (a per-thread key batch), read gating, gathered output
  and compression state belong to one session on one loop; byte and message counts reach the metrics
  once, when the session ends.
- Shared state touched once per connection, each behind its own short lock: the connection limits
  (`ClientLimiter`, `ClientSlot`), the live-session registry (shutdown's 1001), the per-route metrics
  handles (`SessionMetrics.forSession`), a pooled target's session count (`BackendTarget`), and the
  swift-metrics counters themselves. At tens of thousands of new connections per second these are
  where contention would show first.
- One listening socket per listener: accepting is one loop's work. `reuse_port: true` lets several
  gateway processes share a port (the kernel spreads connections), which is how to scale accepts
  past one core today; one SO_REUSEPORT listener per loop inside one process is not built.
TEXT
  exclusivity="${BENCH_OUT:-.build/bench}-exclusivity/results.md"
  if [[ -f "$exclusivity" ]]; then
    echo
    echo '## What run-time exclusivity checks cost (`scripts/bench.sh --exclusivity`)'
    echo
    echo "The release build (checks kept, as shipped) against the same sources built with"
    echo "\`-enforce-exclusivity=unchecked\` in every module, WS→WS, one run. Release builds keep the checks;"
    echo "docs/ARCHITECTURE.md says how the hot path keeps its own accesses provable instead."
    echo
    sed -n '/^### Proxy CPU cost/,/^`@max`/p' "$exclusivity" | sed '$d' | sed '1d'
  fi
  own=.build/wsgate-bench.md
  if [[ -f "$own" ]]; then
    echo
    echo '## wsgate-bench (`make bench`: the project'"'"'s own load generator, no peers needed)'
    echo
    echo "A Swift/NIO load generator and in-process echo backends on one core, wsgate pinned to the other:"
    echo "the load side is the limit (see core use), so compare the per-echo CPU, not the rates."
    echo
    sed "s/^## /### /" "$own"
  fi
} > BENCHMARKS.md
echo "wrote BENCHMARKS.md"
