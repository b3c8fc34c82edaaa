#!/usr/bin/env bash
# The release build as benchmarked and shipped: optimised, with Swift's run-time exclusivity checks
# kept (they were once turned off for ~10% of the CPU per small message; a gateway that must not
# corrupt memory whatever its peers do keeps them until a benchmark in BENCHMARKS.md says otherwise).
#
# usage: scripts/build-release.sh [swift build args...]    prints nothing but the build log;
#        the binary is "$(swift build -c release --show-bin-path)/wsgate"
set -euo pipefail
cd "$(dirname "$0")/.."
exec swift build -c release "$@"
