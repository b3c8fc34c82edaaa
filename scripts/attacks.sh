#!/usr/bin/env bash
# Exhaustion attacks (Tests/chaos/attacks.py) on a release wsgate, one at a time, each with a
# legitimate client beside it: HPACK bombs, ping floods without reading, extended-CONNECT reset
# storms against a service that never accepts, 1,000 HTTP/2 sessions from one address, a
# wrong-password flood, requests and streams left half-open, client-chosen close codes.
# Prints a line of figures per attack and "N passed, M failed" last; exits non-zero on any failure.
#
# usage: scripts/attacks.sh [--debug] [attacks.py options]    e.g. --only hpack_bomb --seconds 20
#   default: a release build; WSGATE_BIN=PATH: a binary built already; --debug: the debug build
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-python.sh >/dev/null
build=()
if [[ "${1:-}" == "--debug" ]]; then build=(--debug); shift; fi
binary=$(scripts/wsgate-binary.sh "${build[@]}")
exec .venv-conformance/bin/python Tests/chaos/attacks.py --wsgate "$binary" "$@"
