#!/usr/bin/env bash
# Runs the demo: wsgate on examples/demo/demo.yaml in front of wsgate-demo-backend (two instances
# of a line-oriented chat console on :9002/:9003, a WebSocket echo on :9001), until Ctrl-C.
# Then open http://127.0.0.1:8080/ — the page is served by wsgate too.
set -euo pipefail
cd "$(dirname "$0")/.."

# libnghttp2 is the HTTP/2 engine (a system library target); pkg-config finds it.
scripts/install-packages.sh libnghttp2-dev zlib1g-dev libcrypt-dev pkg-config

swift build --product wsgate
swift build --product wsgate-demo-backend
bin="$(swift build --show-bin-path)"

"$bin/wsgate-demo-backend" &
backend=$!
trap 'kill $backend 2>/dev/null || true' EXIT
sleep 0.5

echo
echo "wsgate demo: open http://127.0.0.1:8080/ (status: curl 127.0.0.1:9090/status)"
echo
"$bin/wsgate" --config examples/demo/demo.yaml
