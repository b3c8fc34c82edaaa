#!/usr/bin/env bash
# Runs wsgate on examples/demo.yaml in front of its demo services (a WebSocket echo on :9001 and a
# line-oriented TCP service on :9002), until Ctrl-C. Then open examples/demo.html in a browser.
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
echo "wsgate demo: open file://$PWD/examples/demo.html (or connect to ws://127.0.0.1:8080/echo and /tcp)"
echo
"$bin/wsgate" --config examples/demo.yaml
