#!/usr/bin/env bash
# Runs the Autobahn TestSuite (kosoku from PyPI) against wsgate routing / to a WebSocket echo
# backend (Python websockets), and prints "N passed, M failed".
#
# usage: scripts/conformance.sh [--release] [--tls] [kosoku args...]
#   default cases: all of them, 1–13 (the route has compression on, so 12/13 negotiate permessage-deflate)
#   --backend-compression: the echo backend and wsgate's backend leg negotiate permessage-deflate too
#   --tls: wsgate listens with TLS (a throwaway CA); kosoku, which speaks ws:// only, reaches it
#          through scripts/tls_tunnel.py, a verifying TLS client
#   e.g. scripts/conformance.sh -i '9.*'     scripts/conformance.sh -x '9.*' -x '12.*' -x '13.*'
# Environment: CONFORMANCE_OUT (report dir, default .build/conformance), WSGATE_BIN (prebuilt binary).
set -euo pipefail
cd "$(dirname "$0")/.."

config=debug
tls=0
backend_compression=none
while [[ $# -gt 0 ]]; do
  case "$1" in
    --release) config=release; shift ;;
    --tls) tls=1; shift ;;
    --backend-compression) backend_compression=deflate; shift ;;
    *) break ;;
  esac
done
args=("$@")
# Default (no kosoku args): every case, 1–13; 12/13 are permessage-deflate, which wsgate negotiates
# here (--compression below).

scripts/install-packages.sh libnghttp2-dev zlib1g-dev libcrypt-dev pkg-config
scripts/setup-python.sh >&2
venv=.venv-conformance
out="${CONFORMANCE_OUT:-.build/conformance}"
rm -rf "$out"; mkdir -p "$out"

bin="${WSGATE_BIN:-}"
if [[ -z "$bin" ]]; then
  if [[ $config == release ]]; then scripts/build-release.sh --product wsgate >&2; else swift build --product wsgate >&2; fi
  bin="$(swift build -c "$config" --show-bin-path)/wsgate"
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_for() {  # wait_for FILE PATTERN: until FILE has a line matching PATTERN (10 s)
  for _ in $(seq 100); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "conformance: timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

# websockets caps a message at 4096 fragments by default; wsgate relays fragmentation as it is, so
# the 65,536-fragment cases (9.3.1, 9.4.1) need the backend to allow more.
WEBSOCKETS_MAX_FRAGMENTS=1000000 "$venv/bin/python" scripts/echo_ws.py --port 0 --compression "$backend_compression" >"$out/backend.log" 2>&1 &
pids+=($!)
wait_for "$out/backend.log" '^listening [0-9]+'
backend_port=$(awk '/^listening/ {print $2; exit}' "$out/backend.log")

tls_args=()
if [[ $tls == 1 ]]; then
  bash Tests/peers/make-certs.sh "$out/certs" server
  tls_args=(--cert "$out/certs/server.pem" --key "$out/certs/server.key")
fi
"$bin" --listen 127.0.0.1:0 --route "/=ws://127.0.0.1:$backend_port" --compression "${tls_args[@]}" $([[ $backend_compression == deflate ]] && echo --backend-compression) >"$out/wsgate.log" 2>&1 &
pids+=($!)
wait_for "$out/wsgate.log" 'address=127\.0\.0\.1:[0-9]+ .*listening'
gateway_port=$(grep -oE 'address=127\.0\.0\.1:[0-9]+' "$out/wsgate.log" | head -1 | cut -d: -f2)
target_port=$gateway_port
if [[ $tls == 1 ]]; then
  "$venv/bin/python" scripts/tls_tunnel.py --connect "127.0.0.1:$gateway_port" --ca "$out/certs/ca.pem" >"$out/tunnel.log" 2>&1 &
  pids+=($!)
  wait_for "$out/tunnel.log" '^listening [0-9]+'
  target_port=$(awk '/^listening/ {print $2; exit}' "$out/tunnel.log")
  echo "TLS: kosoku -> tunnel 127.0.0.1:$target_port -> (TLS, verified) -> wsgate 127.0.0.1:$gateway_port"
fi
echo "wsgate on 127.0.0.1:$gateway_port -> ws://127.0.0.1:$backend_port (Python websockets echo)"

set +e
timeout --kill-after=10 1200 "$venv/bin/kosoku" -m fuzzingclient -o "$out" -p 1 "${args[@]}" "ws://127.0.0.1:$target_port/" >"$out/kosoku.log" 2>&1
set -e
[[ -f "$out/index.json" ]] || { echo "conformance: kosoku wrote no report" >&2; tail -20 "$out/kosoku.log" >&2; echo "0 passed, 1 failed"; exit 2; }
"$venv/bin/python" scripts/summarize_autobahn.py "$out"
