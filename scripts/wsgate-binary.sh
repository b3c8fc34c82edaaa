#!/usr/bin/env bash
# The wsgate binary the chaos soak and the attacks run, built first; prints its path.
#   WSGATE_BIN=PATH: that binary, built already; --debug: the debug build; otherwise the release
#   build (scripts/build-release.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${WSGATE_BIN:-}" ]]; then
  echo "$WSGATE_BIN"
elif [[ "${1:-}" == "--debug" ]]; then
  swift build --product wsgate >/dev/null
  echo "$PWD/.build/debug/wsgate"
else
  scripts/build-release.sh --product wsgate >/dev/null
  echo "$(swift build -c release --show-bin-path)/wsgate"
fi
