#!/usr/bin/env bash
# The release build as benchmarked and shipped: optimised, and with Swift's run-time exclusivity
# checks off in every module (SwiftNIO's included, which Package.swift's per-target flags cannot
# reach). Those checks cost ~10% of the CPU per small message; they only ever trap on a bug.
#
# usage: scripts/build-release.sh [swift build args...]    prints nothing but the build log;
#        the binary is "$(swift build -c release --show-bin-path)/wsgate"
set -euo pipefail
cd "$(dirname "$0")/.."
exec swift build -c release -Xswiftc -enforce-exclusivity=unchecked "$@"
