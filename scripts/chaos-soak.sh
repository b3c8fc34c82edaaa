#!/usr/bin/env bash
# The chaos soak (Tests/chaos/soak.py): wsgate with every kind of route, clients and backends that
# misbehave at random, and well-behaved sessions beside them checking every byte. Prints the seed
# first and "N passed, M failed" last; exits non-zero on any failure.
#
# usage: scripts/chaos-soak.sh [--debug] [soak.py options]
#   default: a release build (scripts/build-release.sh), 3 rounds of 60 s, handshakes within 1 s
#   WSGATE_BIN=PATH: a binary built already
#   --debug: the debug build (what `make test` runs briefly: a release build would double CI's time)
#   e.g.     scripts/chaos-soak.sh --rounds 10 --duration 60 --seed 1234
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-python.sh >/dev/null
build=()
if [[ "${1:-}" == "--debug" ]]; then build=(--debug); shift; fi
binary=$(scripts/wsgate-binary.sh "${build[@]}")
exec .venv-conformance/bin/python Tests/chaos/soak.py --wsgate "$binary" "$@"
